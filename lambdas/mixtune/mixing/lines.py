"""Streaming over JSON-lines files without holding parsed records.

The mixer reads each source twice, in order, in blocks of whole lines: once to count
(and, when asked, to measure tokens and check for contamination), once to route the chosen
lines to shuffle buckets. A bucket holds a contiguous range of output positions, small
enough to reorder in memory, so the output is an exact seeded permutation written with
memory bounded by the bucket size, whatever the data size.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO

import numpy as np
import orjson

from mixtune import storage
from mixtune.dataprep.errors import DatasetError
from mixtune.dataprep.tokens import estimate_record_tokens

BLOCK_BYTES = 16 << 20
BUCKET_BYTES = 32 << 20
MAX_BUCKETS = 1024


class Digest:
    """sha256 and byte count of a stream, fed chunk by chunk."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._sha.update(chunk)
        self.size += len(chunk)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def iter_line_blocks(uri: str, hasher: Digest | None = None) -> Iterator[bytes]:
    """Blocks of whole lines, each block ending in a newline (one is added to a last line
    without one). ``hasher`` sees the file's exact bytes."""
    carry = b""
    with storage.open_read(uri) as stream:
        while chunk := stream.read(BLOCK_BYTES):
            if hasher is not None:
                hasher.update(chunk)
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            carry = data[cut:]
            yield data if cut == len(data) else data[:cut]
    if carry:
        yield carry + b"\n"


def record_texts(obj: object) -> list[str]:
    """The texts of a parsed record dict, system first, as ``ConversationRecord.texts()``.

    A dict walk instead of the pydantic model: token counting runs over every line of every
    source, and validation is not needed for files that ``mixtune prepare`` wrote.
    """
    if not isinstance(obj, dict) or not isinstance(obj.get("messages"), list):
        raise ValueError("not a conversation record (no 'messages' list)")
    texts = [block["text"] for block in obj.get("system") or ()]
    for message in obj["messages"]:
        texts.extend(block["text"] for block in message["content"])
    return texts


@dataclass
class Scan:
    """What the first pass learns about one prepared source."""

    lines: int
    bytes: int
    sha256: str
    tokens: np.ndarray | None = None  # int64 estimate per line, when measured
    eligible: np.ndarray | None = None  # bool per line; None: every line is eligible
    contaminated: int = 0

    @property
    def eligible_count(self) -> int:
        return self.lines if self.eligible is None else int(self.eligible.sum())

    def pool(self) -> np.ndarray:
        """Indices of the lines that may be chosen."""
        if self.eligible is None:
            return np.arange(self.lines, dtype=np.int64)
        return np.flatnonzero(self.eligible).astype(np.int64)

    def eligible_tokens(self) -> int:
        if self.tokens is None:
            raise ValueError("tokens were not measured")
        if self.eligible is None:
            return int(self.tokens.sum())
        return int(self.tokens[self.eligible].sum())


def scan_source(
    uri: str, measure_tokens: bool, is_contaminated: Callable[[list[str], list[str]], bool] | None = None
) -> Scan:
    """First pass: count lines and hash the bytes; parse lines only when tokens or
    contamination are asked for."""
    hasher = Digest()
    lines = 0
    if not measure_tokens and is_contaminated is None:
        for block in iter_line_blocks(uri, hasher):
            if block.startswith(b"\n") or b"\n\n" in block:
                blank = lines + block.split(b"\n").index(b"") + 1
                raise DatasetError(uri, "blank line; a prepared file holds one record per line", blank)
            lines += block.count(b"\n")
        return Scan(lines=lines, bytes=hasher.size, sha256=hasher.hexdigest())
    token_parts: list[np.ndarray] = []
    eligible_parts: list[np.ndarray] = []
    contaminated = 0
    for block in iter_line_blocks(uri, hasher):
        block_tokens: list[int] = []
        block_ok: list[bool] = []
        for line in block.split(b"\n")[:-1]:
            lines += 1
            try:
                obj = orjson.loads(line)
                texts = record_texts(obj)
            except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
                reason = (
                    "blank line" if not line.strip() else f"not a conversation record ({type(exc).__name__})"
                )
                raise DatasetError(
                    uri, f"{reason}; a prepared file holds one record per line", lines
                ) from None
            block_tokens.append(estimate_record_tokens(texts))
            if is_contaminated is not None:
                bad = is_contaminated(texts, _user_texts(obj))
                contaminated += bad
                block_ok.append(not bad)
        token_parts.append(np.asarray(block_tokens, dtype=np.int64))
        if is_contaminated is not None:
            eligible_parts.append(np.asarray(block_ok, dtype=bool))
    tokens = np.concatenate(token_parts) if token_parts else np.empty(0, dtype=np.int64)
    eligible = (
        (np.concatenate(eligible_parts) if eligible_parts else np.empty(0, dtype=bool))
        if (is_contaminated is not None)
        else None
    )
    return Scan(
        lines=lines,
        bytes=hasher.size,
        sha256=hasher.hexdigest(),
        tokens=tokens if measure_tokens or is_contaminated else None,
        eligible=eligible,
        contaminated=contaminated,
    )


def _user_texts(obj: dict) -> list[str]:
    return [
        block["text"]
        for message in obj["messages"]
        if message.get("role") == "user"
        for block in message["content"]
    ]


@dataclass
class Occurrences:
    """The chosen lines of one source (sorted, repeats allowed) and their output positions."""

    uri: str
    lines: np.ndarray
    positions: np.ndarray


@dataclass
class _Bucket:
    path: Path
    handle: IO[bytes]
    positions: list[np.ndarray] = field(default_factory=list)


def shuffle_write(
    sources: list[Occurrences],
    total: int,
    expected_bytes: int,
    writer: IO[bytes],
    workdir: str | None = None,
) -> tuple[str, int]:
    """Write every chosen line at its output position; return (sha256, bytes) of the output.

    Pass two reads each source in order and appends each chosen line to the bucket that owns
    its output position; pass three loads one bucket at a time, puts its lines in position
    order and writes them out.
    """
    bucket_count = max(1, min(MAX_BUCKETS, -(-expected_bytes // BUCKET_BYTES)))
    span = max(1, -(-total // bucket_count))  # output positions per bucket
    bucket_count = max(1, -(-total // span))
    with tempfile.TemporaryDirectory(prefix="mixtune-mix-", dir=workdir) as tmp:
        buckets = [_open_bucket(Path(tmp), i) for i in range(bucket_count)]
        try:
            for source in sources:
                _route(source, buckets, span)
        finally:
            for bucket in buckets:
                bucket.handle.close()
        digest = Digest()
        for index, bucket in enumerate(buckets):
            data = bucket.path.read_bytes()
            bucket.path.unlink()
            if not data:
                continue
            lines = data.split(b"\n")
            lines.pop()  # the empty string after the last newline
            positions = np.concatenate(bucket.positions) - index * span
            order = np.empty(len(lines), dtype=np.int64)
            order[positions] = np.arange(len(lines), dtype=np.int64)
            out = b"\n".join(_gather(lines, order)) + b"\n"
            del data, lines
            digest.update(out)
            writer.write(out)
    return digest.hexdigest(), digest.size


def _open_bucket(folder: Path, index: int) -> _Bucket:
    path = folder / f"bucket-{index:05d}"
    return _Bucket(path=path, handle=open(path, "wb", buffering=1 << 20))


def _route(source: Occurrences, buckets: list[_Bucket], span: int) -> None:
    chosen, positions = source.lines, source.positions
    if len(chosen) == 0:
        return
    first = 0  # index of the block's first line in the file
    done = 0  # occurrences routed so far
    for block in iter_line_blocks(source.uri):
        count = block.count(b"\n")
        end = int(np.searchsorted(chosen, first + count, side="left"))
        if end > done:
            local = chosen[done:end] - first
            targets = positions[done:end]
            owners = targets // span
            order = np.argsort(owners, kind="stable")
            owners, local, targets = owners[order], local[order], targets[order]
            lines = block.split(b"\n")
            picked = _gather(lines, local)
            cuts = np.flatnonzero(np.diff(owners)) + 1
            starts = [0, *cuts.tolist()]
            stops = [*cuts.tolist(), len(owners)]
            for start, stop in zip(starts, stops, strict=True):
                bucket = buckets[int(owners[start])]
                bucket.handle.write(b"\n".join(picked[start:stop]) + b"\n")
                bucket.positions.append(targets[start:stop])
            done = end
        first += count
        if done == len(chosen):
            break
    if done != len(chosen):
        raise DatasetError(source.uri, "the file changed while mixing (fewer lines than counted)")


def _gather(items: list[bytes], indices: np.ndarray) -> tuple[bytes, ...]:
    """``items`` at ``indices`` in one C-level call (itemgetter), as a tuple."""
    if len(indices) == 1:
        return (items[int(indices[0])],)
    return itemgetter(*indices.tolist())(items)
