"""storage.open_write to S3 (moto): multipart from a bounded memory buffer, no temporary file,
nothing left behind on failure."""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from mixtune import storage
from mixtune.dataprep import PrepareOptions, prepare_dataset

MIB = 1 << 20


@pytest.fixture
def no_temp_files(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every tempfile entry point fails for our code. moto, the fake S3 itself, keeps object
    data in spooled temporary files, so its own calls (and tempfile's internal ones) pass."""
    refused: list[str] = []

    def guard(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.split(".")[0] in ("moto", "tempfile"):
                return real(*args, **kwargs)
            refused.append(f"{caller}: tempfile.{name}")
            raise AssertionError(f"{caller} asked for a temporary file (tempfile.{name})")

        return guarded

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, guard(name, getattr(tempfile, name)))
    return refused


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    # (raising=False: the same tests can be run against a storage module without the setting)
    monkeypatch.setattr(storage, "S3_PART_SIZE", 5 * MIB, raising=False)  # S3's minimum part size
    return 5 * MIB


def test_open_write_uploads_parts_from_memory_without_a_temp_file(bucket, no_temp_files, small_parts) -> None:
    chunk = bytes(range(256)) * 4096  # 1 MiB
    with storage.open_write("s3://raw/out/big.bin") as stream:
        for _ in range(12):
            stream.write(chunk)
    head = bucket.head_object(Bucket="raw", Key="out/big.bin")
    assert head["ContentLength"] == 12 * MIB
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MiB
    assert bucket.get_object(Bucket="raw", Key="out/big.bin")["Body"].read() == chunk * 12
    assert no_temp_files == []


def test_small_and_empty_objects_are_written_too(bucket, no_temp_files) -> None:
    storage.write_bytes("s3://raw/out/small.json", b"{}")
    storage.write_bytes("s3://raw/out/empty.jsonl", b"")
    assert storage.read_bytes("s3://raw/out/small.json") == b"{}"
    assert storage.read_bytes("s3://raw/out/empty.jsonl") == b""
    assert no_temp_files == []


def test_an_exception_aborts_the_multipart_upload(bucket, small_parts) -> None:
    with pytest.raises(RuntimeError, match="boom"), storage.open_write("s3://raw/out/partial.bin") as stream:
        stream.write(b"x" * (6 * MIB))  # one part is uploaded before the failure
        raise RuntimeError("boom")
    assert "Contents" not in bucket.list_objects_v2(Bucket="raw", Prefix="out/")
    assert bucket.list_multipart_uploads(Bucket="raw").get("Uploads", []) == []


def test_a_failed_rewrite_keeps_the_previous_object(bucket, small_parts) -> None:
    storage.write_bytes("s3://raw/out/data.jsonl", b"old\n")
    with pytest.raises(ValueError, match="stop"), storage.open_write("s3://raw/out/data.jsonl") as stream:
        stream.write(b"new" * (2 * MIB))
        raise ValueError("stop")
    assert storage.read_bytes("s3://raw/out/data.jsonl") == b"old\n"


def test_prepare_on_s3_uses_no_temporary_file_within_the_dedupe_budget(bucket, no_temp_files) -> None:
    rows = [{"question": f"question {i}", "answer": "an answer"} for i in range(2000)]
    bucket.put_object(
        Bucket="raw", Key="in/qa.jsonl", Body="".join(json.dumps(r) + "\n" for r in rows).encode()
    )
    report = prepare_dataset("s3://raw/in/qa.jsonl", "s3://raw/datasets/qa", PrepareOptions())
    assert report.accepted and report.counts.kept == 2000
    assert no_temp_files == []
