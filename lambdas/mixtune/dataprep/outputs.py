"""The output lines of preparation, their digests, and the writer that hashes them.

``record_line`` and ``record_digester`` are the one definition of a kept record's bytes and
of its 64-bit digest (dedupe, split): the first pass and the late-duplicate pass both use
them, so a record read twice comes out the same both times.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

import orjson

from mixtune import storage
from mixtune.dataprep.errors import RecordError
from mixtune.records import SCHEMA_VERSION

OUTPUT_FILES = ("prepared.jsonl", "eval.jsonl", "rejected.jsonl")
_SINK_LINES = 4096


def record_line(system: str | None, turns: list[tuple[str, str]]) -> bytes:
    """The compact Converse JSON line (no newline), the same bytes as ConversationRecord's."""
    record: dict[str, Any] = {"schemaVersion": SCHEMA_VERSION}
    if system is not None:
        record["system"] = [{"text": system}]
    record["messages"] = [{"role": role, "content": [{"text": text}]} for role, text in turns]
    return orjson.dumps(record)


def record_digester(seed: int) -> Callable[[bytes], int]:
    """The seeded 64-bit digest of a record line (blake2b, salted with the seed)."""
    # copying a keyed hasher is about twice as fast as building one with keyword arguments
    fresh = hashlib.blake2b(digest_size=8, salt=seed.to_bytes(8, "big", signed=True)).copy
    from_bytes = int.from_bytes

    def record_digest(data: bytes) -> int:
        hasher = fresh()
        hasher.update(data)
        return from_bytes(hasher.digest(), "big")

    return record_digest


def rejected_line(error: RecordError) -> bytes:
    """One ``rejected.jsonl`` line: line number, rule, reason and the input value."""
    entry = {"line": error.line, "rule": error.rule, "reason": error.message, "record": error.raw}
    try:
        return orjson.dumps(entry, default=str)
    except (TypeError, orjson.JSONEncodeError):
        entry["record"] = None
        return orjson.dumps(entry)


class Sink:
    """A buffered JSONL writer that hashes what it writes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._buffer: list[bytes] = []
        self.digest = hashlib.sha256()
        self.lines = 0

    def add(self, line: bytes) -> None:
        self._buffer.append(line)
        if len(self._buffer) >= _SINK_LINES:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            self._buffer.append(b"")
            data = b"\n".join(self._buffer)
            self.lines += len(self._buffer) - 1
            self._buffer = []
            self.digest.update(data)
            self._stream.write(data)


def rewrite(uri: str, drop: Iterator[int], extra: Iterable[bytes] = ()) -> str:
    """Rewrite a JSONL output without the lines ``drop`` names (0-based, ascending), then
    append the lines of ``extra`` (without newlines). Safe in place: ``open_write`` writes
    beside the target (or uploads a new object) and replaces it only when done. Returns the
    new file's sha256.
    """
    skip = next(drop, -1)
    with storage.open_read(uri) as reader, storage.open_write(uri) as writer:
        sink = Sink(writer)
        for index, raw in enumerate(reader):
            if index == skip:
                skip = next(drop, -1)
                continue
            sink.add(raw[:-1] if raw.endswith(b"\n") else raw)
        for line in extra:
            sink.add(line)
        sink.flush()
    return sink.digest.hexdigest()
