"""Reading and writing files by URI: local paths and ``s3://bucket/key``.

S3 objects are streamed (never downloaded whole) and written by a multipart upload straight
from memory (``smart_open``'s S3 writer): one buffer of ``S3_PART_SIZE`` bytes per open
output, no temporary file, so neither memory nor ``/tmp`` grows with the file size, and the
object appears only when the writer closes without error (a failure aborts the upload).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

CHUNK = 1 << 20
# Memory per S3 output being written. S3 allows 10,000 parts a upload, so objects up to
# 160 GiB; 5 MiB is S3's smallest part.
S3_PART_SIZE = 16 << 20


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def join(base: str, *parts: str) -> str:
    """Join path parts onto a local folder or an S3 prefix."""
    if is_s3(base):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(base, *parts))


def s3_client() -> Any:
    import boto3  # boto3 honours AWS_ENDPOINT_URL, which the local cloud sets

    return boto3.client("s3")


@contextmanager
def open_read(uri: str) -> Iterator[IO[bytes]]:
    """A binary stream over a local file or an S3 object (streamed, not downloaded)."""
    if is_s3(uri):
        bucket, key = split_s3(uri)
        body = s3_client().get_object(Bucket=bucket, Key=key)["Body"]
        stream = io.BufferedReader(_RawStream(body), buffer_size=CHUNK)
        try:
            yield stream
        finally:
            body.close()
    else:
        with open(uri, "rb") as handle:
            yield handle


class _RawStream(io.RawIOBase):
    """Adapts botocore's StreamingBody to io.RawIOBase so it can be buffered and wrapped."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@contextmanager
def open_write(uri: str) -> Iterator[IO[bytes]]:
    """A binary stream that becomes the file at ``uri`` when the block ends without error.

    S3 targets are uploaded part by part from a memory buffer of ``S3_PART_SIZE`` bytes
    (nothing is staged on disk); an error aborts the upload, so no partial object is left
    and an existing one is kept. Local targets are written beside the destination and
    renamed into place.
    """
    if is_s3(uri):
        from smart_open.s3 import MultipartWriter  # lazy: only S3 writers pay for its import

        bucket, key = split_s3(uri)
        writer = MultipartWriter(bucket, key, part_size=S3_PART_SIZE, client=s3_client())
        try:
            yield writer  # type: ignore[misc]
            writer.close()  # completes the upload
        except BaseException:
            writer.terminate()  # aborts it: the uploaded parts are dropped
            raise
    else:
        path = Path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        try:
            with open(tmp, "wb") as handle:
                yield handle
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def read_bytes(uri: str) -> bytes:
    with open_read(uri) as stream:
        return stream.read()


def write_bytes(uri: str, data: bytes) -> None:
    with open_write(uri) as stream:
        stream.write(data)


def exists(uri: str) -> bool:
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            s3_client().head_object(Bucket=bucket, Key=key)
        except ClientError:
            return False
        return True
    return Path(uri).exists()


def size(uri: str) -> int:
    """Bytes of a local file or an S3 object (HeadObject); FileNotFoundError when absent."""
    if is_s3(uri):
        from botocore.exceptions import ClientError

        bucket, key = split_s3(uri)
        try:
            return int(s3_client().head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise FileNotFoundError(uri) from None
            raise
    return Path(uri).stat().st_size


def sha256_of(uri: str) -> str:
    digest = hashlib.sha256()
    with open_read(uri) as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def copy(src: str, dst: str) -> None:
    with open_read(src) as reader, open_write(dst) as writer:
        shutil.copyfileobj(reader, writer, CHUNK)


def upload_dir(folder: str | Path, uri: str) -> None:
    """Copy a local folder's files to a local folder or S3 prefix."""
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        copy(str(path), join(uri, path.relative_to(root).as_posix()))


def download_dir(uri: str, folder: str | Path) -> Path:
    """Copy every object under an S3 prefix (or a local folder) into ``folder``."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    if not is_s3(uri):
        shutil.copytree(uri, target, dirs_exist_ok=True)
        return target
    bucket, prefix = split_s3(uri.rstrip("/") + "/")
    paginator = s3_client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix) :]
            if relative:
                copy(f"s3://{bucket}/{item['Key']}", str(target / relative))
    return target
