"""Streaming loaders: JSONL, JSON (an array, or an object holding one), CSV/TSV, Parquet.

Every loader reads local paths and ``s3://`` URIs through :mod:`mixtune.storage` in
constant memory and yields ``(line_no, value)`` pairs, where ``value`` is the parsed row or
a :class:`RecordError` for a row that cannot be parsed. Problems with the file as a whole
(empty, binary, not the announced format) raise :class:`DatasetError` naming file and line.

A single record may not exceed ``max_record_bytes`` (default 10 MiB): a longer JSONL line
or JSON array element is skipped in chunks and reported as one ``record_too_large``
rejection, so a 50 MB line costs no more memory than the limit.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import IO, Any

import orjson

from mixtune import storage
from mixtune.dataprep.errors import DatasetError, RecordError

FORMATS = ("jsonl", "json", "csv", "tsv", "parquet")
DEFAULT_MAX_RECORD_BYTES = 10 * 1024 * 1024
CHUNK = 1 << 20
RAW_PREFIX = 2000  # characters of an unparsable line kept in rejected.jsonl
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv"}
_SUFFIXES |= {".parquet": "parquet", ".pq": "parquet"}
_SURROGATE = re.compile("[\udc80-\udcff]")
_JSON_STRUCT = re.compile(rb'[\[\]{}",\\]')


def detect_format(uri: str, explicit: str | None = None) -> tuple[str, bool]:
    """``(format, gzipped)`` from an explicit name or the file suffix (``.gz`` is unwrapped)."""
    name = uri.rstrip("/").rsplit("/", 1)[-1].lower()
    gzipped = name.endswith(".gz")
    if gzipped:
        name = name[:-3]
    if explicit:
        fmt = explicit.lower().lstrip(".")
        fmt = {"ndjson": "jsonl", "pq": "parquet"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise DatasetError(uri, f"unknown format {explicit!r}; use one of {', '.join(FORMATS)}")
        return fmt, gzipped
    suffix = os.path.splitext(name)[1]
    if suffix not in _SUFFIXES:
        raise DatasetError(
            uri,
            f"cannot tell the format from the suffix {suffix or '(none)'!r}; pass format= one of {', '.join(FORMATS)}",
        )
    return _SUFFIXES[suffix], gzipped


class _Hashing(io.RawIOBase):
    """Hashes and counts every byte read through it, so the input is read once."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._stream.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        self.bytes_read += size
        return size


class RowSource:
    """The rows of one file, streamed. Iterate for ``(line_no, row | RecordError)``.

    After iteration ``sha256`` holds the input file's hash and ``columns`` the header of
    tabular files; ``bytes_read`` and ``total_bytes`` (when known) serve progress reports.
    """

    def __init__(
        self, uri: str, fmt: str | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        self.uri = uri
        self.format, self.gzipped = detect_format(uri, fmt)
        self.max_record_bytes = max_record_bytes
        self.columns: list[str] | None = None
        self.sha256: str | None = None
        self._hashing: _Hashing | None = None
        self.total_bytes: int | None = None
        if not storage.is_s3(uri):
            try:
                self.total_bytes = os.path.getsize(uri)
            except OSError as exc:
                raise DatasetError(uri, f"cannot read: {exc.strerror or exc}") from None

    @property
    def bytes_read(self) -> int:
        return self._hashing.bytes_read if self._hashing else 0

    @property
    def tabular(self) -> bool:
        return self.format in ("csv", "tsv", "parquet")

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        if self.format == "parquet":
            yield from self._parquet()
            return
        with ExitStack() as stack:
            try:
                raw = stack.enter_context(storage.open_read(self.uri))
            except Exception as exc:
                raise DatasetError(self.uri, f"cannot read: {_short(exc)}") from None
            self._hashing = _Hashing(raw)
            stream: IO[bytes] = io.BufferedReader(self._hashing, CHUNK)
            if self.gzipped:
                stream = io.BufferedReader(gzip.GzipFile(fileobj=stream), CHUNK)  # type: ignore[arg-type]
            try:
                self._check_text(stream)
                if self.format == "jsonl":
                    yield from self._jsonl(stream)
                elif self.format == "json":
                    yield from self._json(stream)
                else:
                    yield from self._csv(stream)
                while self._hashing.read(CHUNK):  # hash what a loader did not need to read
                    pass
            except (OSError, EOFError, gzip.BadGzipFile) as exc:
                raise DatasetError(self.uri, f"read failed: {_short(exc)}") from None
            self.sha256 = self._hashing.digest.hexdigest()

    def _check_text(self, stream: IO[bytes]) -> None:
        head = stream.peek(8192)[:8192]  # type: ignore[attr-defined]
        if not head:
            raise DatasetError(self.uri, "the file is empty")
        if b"\x00" in head:
            line = head[: head.index(b"\x00")].count(b"\n") + 1
            raise DatasetError(
                self.uri,
                f"the file holds NUL bytes: binary, or text not in UTF-8 (expected {self.format})",
                line,
            )

    def _jsonl(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        limit = self.max_record_bytes
        readline = stream.readline
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        line_no = 0
        while line := readline(limit + 1):
            line_no += 1
            if line_no == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if len(line) > limit and not line.endswith(b"\n"):
                while (more := readline(CHUNK)) and not more.endswith(b"\n"):
                    pass
                yield (
                    line_no,
                    RecordError(
                        line_no,
                        "record_too_large",
                        f"line longer than {limit} bytes",
                        line[:RAW_PREFIX].decode("utf-8", "replace"),
                    ),
                )
                continue
            try:
                yield line_no, loads(line)
            except decode_error as exc:
                if line.strip():
                    yield line_no, _parse_error(line_no, line, exc)

    def _json(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        for line_no, element in _JsonArrayScanner(self.uri, self.max_record_bytes).scan(stream):
            if isinstance(element, RecordError):
                yield line_no, element
                continue
            try:
                yield line_no, orjson.loads(element)
            except orjson.JSONDecodeError as exc:
                yield line_no, _parse_error(line_no, element, exc)

    def _csv(self, stream: IO[bytes]) -> Iterator[tuple[int, Any]]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")  # type: ignore[arg-type]
        csv.field_size_limit(self.max_record_bytes)
        reader = csv.reader(text, delimiter="\t" if self.format == "tsv" else ",")
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise DatasetError(self.uri, f"unreadable CSV header: {exc}", 1) from None
        if not header or not any(name.strip() for name in header):
            raise DatasetError(self.uri, "no CSV header row", 1)
        if _SURROGATE.search("".join(header)):
            raise DatasetError(self.uri, "the header is not valid UTF-8", 1)
        self.columns = [name.strip() for name in header]
        width = len(header)
        columns = self.columns
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                start, last = last + 1, reader.line_num
                yield start, RecordError(start, "invalid_csv", str(exc))
                continue
            start, last = last + 1, reader.line_num
            if not row:
                continue
            if len(row) != width:
                if len(row) == 1 and not row[0].strip():
                    continue
                yield (
                    start,
                    RecordError(
                        start, "invalid_csv", f"row has {len(row)} fields, the header has {width}", row
                    ),
                )
                continue
            if _SURROGATE.search("".join(row)):
                yield start, RecordError(start, "encoding", "text is not valid UTF-8")
                continue
            yield start, dict(zip(columns, row, strict=True))

    def _parquet(self) -> Iterator[tuple[int, Any]]:
        try:
            import pyarrow.parquet as pq  # optional: the 'parquet' extra
        except ImportError:
            raise DatasetError(
                self.uri, "reading Parquet needs pyarrow: pip install 'mixtune[parquet]'"
            ) from None
        with ExitStack() as stack:
            source: Any = self.uri
            if storage.is_s3(self.uri):
                source = stack.enter_context(_S3RangeFile(self.uri))
            try:
                parquet = pq.ParquetFile(source)
            except Exception as exc:
                raise DatasetError(self.uri, f"not a readable Parquet file: {_short(exc)}") from None
            self.columns = list(parquet.schema_arrow.names)
            row_no = 0
            try:
                for batch in parquet.iter_batches(batch_size=2048):
                    for row in batch.to_pylist():
                        row_no += 1
                        yield row_no, row
            except Exception as exc:
                raise DatasetError(self.uri, f"Parquet read failed: {_short(exc)}", row_no + 1) from None
        self.sha256 = storage.sha256_of(self.uri)


class _JsonArrayScanner:
    """Splits the top-level array of a JSON document into element byte strings, streaming.

    Only structural bytes are looked at (a regex finds them), so scanning costs a fraction
    of parsing; elements are parsed one at a time by orjson. The array may be the document
    itself or the first array-valued member of a top-level object.
    """

    def __init__(self, uri: str, max_bytes: int) -> None:
        self.uri = uri
        self.max_bytes = max_bytes

    def scan(self, stream: IO[bytes]) -> Iterator[tuple[int, bytes | RecordError]]:
        depth = 0
        in_string = False
        top: int | None = None  # b"[" or b"{" once the first structural byte is seen
        array_depth: int | None = None  # depth of the elements once the array is found
        closed = False
        parts: list[bytes] = []  # the current element's bytes so far
        size = 0
        region_line = 0
        line = 1
        ignore_at = -1  # the byte after a backslash inside a string
        first = True
        while not closed and (chunk := stream.read(CHUNK)):
            if first:
                first = False
                if chunk.startswith(b"\xef\xbb\xbf"):
                    chunk = chunk[3:]
                stripped = chunk.lstrip()
                if stripped and stripped[:1] not in (b"[", b"{"):
                    raise DatasetError(self.uri, "not a JSON array or an object holding an array", 1)
            counted = 0  # position up to which newlines are counted into `line`
            seg_start = 0  # where the current element's bytes begin in this chunk
            for match in _JSON_STRUCT.finditer(chunk):
                i = match.start()
                if i == ignore_at:
                    continue
                byte = chunk[i]
                if in_string:
                    if byte == 0x5C:  # backslash: the next byte is escaped
                        ignore_at = i + 1
                    elif byte == 0x22:
                        in_string = False
                    continue
                if byte == 0x22:
                    in_string = True
                elif byte in (0x5B, 0x7B):  # [ {
                    if array_depth is None:
                        if depth == 0:
                            top = byte
                            if byte == 0x5B:
                                array_depth = 1
                        elif depth == 1 and top == 0x7B and byte == 0x5B:
                            array_depth = 2
                        if array_depth is not None:
                            line += chunk.count(b"\n", counted, i)
                            counted = i
                            region_line, seg_start, parts, size = line, i + 1, [], 0
                    depth += 1
                elif byte in (0x5D, 0x7D):  # ] }
                    depth -= 1
                    if array_depth is not None and depth == array_depth - 1:
                        line += chunk.count(b"\n", counted, i)
                        counted = i
                        element = self._take(parts, chunk[seg_start:i], size)
                        if element is not None and element[1]:
                            yield self._emit(region_line, element)
                        closed = True
                        break
                    if array_depth is None and depth == 0:
                        raise DatasetError(self.uri, "the JSON object holds no array of records", line)
                elif byte == 0x2C and depth == array_depth:  # a comma between elements
                    line += chunk.count(b"\n", counted, i)
                    counted = i
                    element = self._take(parts, chunk[seg_start:i], size)
                    yield self._emit(region_line, element)
                    region_line, seg_start, parts, size = line, i + 1, [], 0
            if not closed:
                line += chunk.count(b"\n", counted)
                if ignore_at >= len(chunk):
                    ignore_at -= len(chunk)
                else:
                    ignore_at = -1
                if array_depth is not None:
                    tail = chunk[seg_start:]
                    if size <= self.max_bytes:
                        parts.append(tail)
                    size += len(tail)
        if top is None:
            raise DatasetError(self.uri, "no JSON value in the file", 1)
        if array_depth is None:
            raise DatasetError(self.uri, "not a JSON array or an object holding an array", 1)
        if not closed:
            pending = self._take(parts, b"", size)
            if not pending[1]:
                raise DatasetError(self.uri, "end of file before the JSON array closed (truncated?)", line)
            yield self._emit(region_line, pending, truncated=True)

    def _take(self, parts: list[bytes], tail: bytes, size: int) -> tuple[int, bytes, int] | None:
        if size <= self.max_bytes:
            parts.append(tail)
        size += len(tail)
        data = b"".join(parts)
        stripped = data.lstrip()
        return data[: len(data) - len(stripped)].count(b"\n"), stripped.rstrip(), size

    def _emit(
        self, region_line: int, element: tuple[int, bytes, int] | None, truncated: bool = False
    ) -> tuple[int, bytes | RecordError]:
        leading, data, size = element or (0, b"", 0)
        line_no = region_line + leading
        if size > self.max_bytes:
            return line_no, RecordError(
                line_no,
                "record_too_large",
                f"element longer than {self.max_bytes} bytes",
                data[:RAW_PREFIX].decode("utf-8", "replace"),
            )
        if truncated:
            return line_no, RecordError(
                line_no,
                "invalid_json",
                "end of file inside an element (truncated file?)",
                data[:RAW_PREFIX].decode("utf-8", "replace"),
            )
        if not data:
            return line_no, RecordError(line_no, "invalid_json", "empty array element")
        return line_no, data


class _S3RangeFile(io.RawIOBase):
    """A seekable read-only view of an S3 object through ranged GETs (for Parquet footers)."""

    def __init__(self, uri: str) -> None:
        self._bucket, self._key = storage.split_s3(uri)
        self._client = storage.s3_client()
        self._size = int(self._client.head_object(Bucket=self._bucket, Key=self._key)["ContentLength"])
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        if self._pos >= self._size or not len(buffer):
            return 0
        end = min(self._size, self._pos + len(buffer)) - 1
        body = self._client.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self._pos}-{end}")
        data = body["Body"].read()
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def __enter__(self) -> _S3RangeFile:
        return self


def _parse_error(line_no: int, data: bytes, exc: Exception) -> RecordError:
    message = str(exc)
    rule = "encoding" if "UTF-8" in message else "invalid_json"
    if "ecursion" in message or "depth limit" in message:
        message = "JSON nested too deeply"
    elif rule == "encoding":
        message = "text is not valid UTF-8"
    return RecordError(line_no, rule, message, data[:RAW_PREFIX].decode("utf-8", "replace"))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]


def iter_rows(
    uri: str, fmt: str | None = None, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> Iterator[tuple[int, Any]]:
    """``(line_no, row | RecordError)`` for every row of a file (see :class:`RowSource`)."""
    yield from RowSource(uri, fmt, max_record_bytes)
