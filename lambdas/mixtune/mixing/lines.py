"""Streaming over JSON-lines files without holding parsed records.

The mixer reads each source twice, in order, in 1 MB blocks of whole lines: once to count
lines (and, when the plan needs them, to measure tokens with numpy over whole blocks, see
:func:`block_tokens`, or to check for contamination, which parses every line), once to
hash the bytes, measure tokens that are only reported, and route the chosen lines to
shuffle buckets. Each chosen line goes to a uniformly random bucket; each bucket is then
permuted in memory and written out. Lines move as byte ranges found with numpy and copied
by :func:`~mixtune.mixing.gather.gather_lines`; nothing is parsed. Buckets are small, and
beyond a memory budget they wait in temporary files, so memory stays bounded whatever the
data size.

The output depends on the inputs, the seed and the bucket count, which follows from the
data size and ``BUCKET_BYTES``: identical for identical inputs with the same mixtune version.
"""

from __future__ import annotations

import hashlib
import queue
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
import orjson

from mixtune import storage
from mixtune.dataprep.errors import DatasetError
from mixtune.dataprep.tokens import CHARS_PER_TOKEN, estimate_record_tokens
from mixtune.mixing.gather import gather_lines

BLOCK_BYTES = 1 << 20
BUCKET_BYTES = 4 << 20
# Chosen lines up to this many bytes stay in memory between passes two and three (most
# mixes fit whole); beyond it the remaining buckets spill to temporary files. Held pieces
# cost a little more than their size (allocator overhead): peak RSS stays near 420 MB.
MEMORY_BYTES = 224 << 20
MAX_BUCKETS = 1024
# Write buffer of each spilled bucket: every bucket holds one, so it stays small.
SPILL_BUFFER_BYTES = 64 << 10


class Digest:
    """sha256 (unless ``hashing`` is off) and byte count of a stream, fed chunk by chunk."""

    def __init__(self, hashing: bool = True) -> None:
        self._sha = hashlib.sha256() if hashing else None
        self.size = 0

    @property
    def hashing(self) -> bool:
        return self._sha is not None

    def update(self, chunk: bytes) -> None:
        if self._sha is not None:
            self._sha.update(chunk)
        self.size += len(chunk)

    def feed(self, chunk: bytes, worker: Background) -> None:
        """``update`` on the worker thread when hashing (sha256 releases the GIL); a byte
        count alone is cheaper here than a hand-over."""
        if self.hashing:
            worker.submit(self.update, chunk)
        else:
            self.update(chunk)

    def hexdigest(self) -> str | None:
        return self._sha.hexdigest() if self._sha is not None else None


class Background:
    """Runs calls in order on one worker thread, at most ``depth`` waiting.

    Hashing and file writes release the GIL, so handing them to a worker overlaps them with
    the main thread's splitting and joining; the bounded queue bounds the memory held.
    A failure in the worker is raised in the caller at the next ``submit`` or at ``close``.
    """

    def __init__(self, depth: int = 2) -> None:
        self._queue: queue.Queue[tuple[Callable[..., object], tuple[object, ...]] | None] = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="mixtune-mix-io", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                function, args = item
                try:
                    function(*args)
                except BaseException as exc:
                    self._error = exc

    def submit(self, function: Callable[..., object], *args: object) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((function, args))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def iter_line_blocks(uri: str, hasher: Digest | None = None) -> Iterator[bytes]:
    """Blocks of whole lines, each block ending in a newline (one is added to a last line
    without one). ``hasher`` sees the file's exact bytes (on a worker thread when hashing)."""
    with storage.open_read(uri) as stream, Background() as worker:
        while chunk := stream.read(BLOCK_BYTES):
            # Complete the block's last line: one copy, unlike carrying a tail between reads.
            tail = b"" if chunk.endswith(b"\n") else stream.readline()
            block = chunk + tail if tail else chunk
            if hasher is not None:
                hasher.feed(block, worker)
            yield block if block.endswith(b"\n") else block + b"\n"


class TokenTally:
    """Token estimates of every line of one file, fed its blocks of whole lines in order."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.lines = 0
        self._parts: list[np.ndarray] = []

    def update(self, block: bytes, ends: np.ndarray | None = None) -> None:
        """Measure the next block (``ends``: its newline offsets, when already known)."""
        self._parts.append(block_tokens(self.uri, self.lines, block, ends))
        self.lines += len(self._parts[-1])

    def tokens(self) -> np.ndarray:
        return np.concatenate(self._parts) if self._parts else np.empty(0, dtype=np.int64)


def newline_count(block: bytes) -> int:
    """Newlines in a block (numpy: several times faster than ``bytes.count``)."""
    return int(np.count_nonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n")))


def line_ends(block: bytes) -> np.ndarray:
    """Offsets of the newlines in a block."""
    return np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))


def count_lines(uri: str, hasher: Digest) -> int:
    """Lines of a file (a last line without a newline counts); ``hasher`` sees its bytes.

    Raw blocks, not whole lines: nothing is split or joined. Blank lines are caught when
    chosen lines are routed; prepared files never hold them.
    """
    lines = 0
    last = b"\n"
    with storage.open_read(uri) as stream, Background() as worker:
        while chunk := stream.read(BLOCK_BYTES):
            hasher.feed(chunk, worker)
            lines += newline_count(chunk)
            last = chunk[-1:]
    return lines + (last != b"\n")


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
    sha256: str | None  # None until hashed (see ``scan_source``)
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
    uri: str,
    measure_tokens: bool,
    is_contaminated: Callable[[list[str], list[str]], bool] | None = None,
    hash_bytes: bool = True,
) -> Scan:
    """First pass: count lines (and hash the bytes when ``hash_bytes``; the mixer hashes
    while routing instead); parse lines only when tokens or contamination are asked for."""
    hasher = Digest(hash_bytes)
    lines = 0
    if not measure_tokens and is_contaminated is None:
        lines = count_lines(uri, hasher)
        return Scan(lines=lines, bytes=hasher.size, sha256=hasher.hexdigest())
    if is_contaminated is None:
        tally = TokenTally(uri)
        for block in iter_line_blocks(uri, hasher):
            tally.update(block)
        return Scan(lines=tally.lines, bytes=hasher.size, sha256=hasher.hexdigest(), tokens=tally.tokens())
    token_parts: list[np.ndarray] = []
    eligible_parts: list[np.ndarray] = []
    contaminated = 0
    for block in iter_line_blocks(uri, hasher):
        tokens_here: list[int] = []
        block_ok: list[bool] = []
        for line in block.split(b"\n")[:-1]:
            lines += 1
            texts, obj = _parse_line(uri, lines, line)
            tokens_here.append(estimate_record_tokens(texts))
            bad = is_contaminated(texts, _user_texts(obj))
            contaminated += bad
            block_ok.append(not bad)
        token_parts.append(np.asarray(tokens_here, dtype=np.int64))
        eligible_parts.append(np.asarray(block_ok, dtype=bool))
    return Scan(
        lines=lines,
        bytes=hasher.size,
        sha256=hasher.hexdigest(),
        tokens=np.concatenate(token_parts) if token_parts else np.empty(0, dtype=np.int64),
        eligible=np.concatenate(eligible_parts) if eligible_parts else np.empty(0, dtype=bool),
        contaminated=contaminated,
    )


def _parse_line(uri: str, line_no: int, line: bytes) -> tuple[list[str], dict]:
    """A line's texts and parsed record; a DatasetError naming the line when it is not one."""
    try:
        obj = orjson.loads(line)
        return record_texts(obj), obj
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        reason = "blank line" if not line.strip() else f"not a conversation record ({type(exc).__name__})"
        raise DatasetError(uri, f"{reason}; a prepared file holds one record per line", line_no) from None


_TEXT_WORD = int.from_bytes(b"text", "little")


def block_tokens(uri: str, first: int, block: bytes, ends: np.ndarray | None = None) -> np.ndarray:
    """Token estimate of every line of a block of whole lines, without parsing most of them.

    Records hold texts only under ``"text"`` keys (the record models forbid other fields).
    In a line with no backslash and no non-ASCII byte no string holds a quote, so every
    ``"text":"`` is a text key: three quotes in a row at offsets 0, 5 and 7, its value ends
    at the next quote, and its character count is the distance between the two. numpy
    measures all such lines of a block at once. Other lines (escapes, non-ASCII text,
    blank, not one object, no text) are parsed one by one, which also reports a malformed
    line. ``first``: lines before the block; ``ends``: its newline offsets, when known.
    """
    buf = np.frombuffer(block, dtype=np.uint8)
    if ends is None:
        ends = line_ends(block)
    count = len(ends)
    starts = np.empty(count, dtype=np.int64)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    simple = ends > starts
    simple[simple] &= (buf[starts[simple]] == ord("{")) & (buf[ends[simple] - 1] == ord("}"))
    if not block.isascii() or b"\\" in block:
        special = np.flatnonzero((buf == ord("\\")) | (buf >= 0x80))
        # Per-line counts from cumulative counts at the line ends.
        simple &= np.diff(np.searchsorted(special, ends), prepend=0) == 0
    quotes = np.flatnonzero(buf == ord('"'))
    gaps = np.diff(quotes)
    keys = np.flatnonzero((gaps[:-2] == 5) & (gaps[1:-1] == 2))  # quotes i, i+1, i+2 at q, q+5, q+7
    at = quotes[keys]
    # The four letters as one little-endian word read at every offset (a stride of one byte).
    words = np.ndarray(shape=(max(len(block) - 3, 0),), dtype="<u4", buffer=block, strides=(1,))
    keys = keys[(words[at + 1] == _TEXT_WORD) & (buf[at + 6] == ord(":"))]
    opens = quotes[keys + 2]
    closes = quotes[keys + 3]
    owner = np.searchsorted(ends, opens)
    per_text = (closes - opens - 1 + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
    tokens = np.bincount(owner, weights=per_text, minlength=count).astype(np.int64)
    # A line with no text at all is parsed, so that a line that is no record is reported.
    simple &= np.bincount(owner, minlength=count) > 0
    for index in np.flatnonzero(~simple).tolist():
        texts, _ = _parse_line(uri, first + index + 1, block[starts[index] : ends[index]])
        tokens[index] = estimate_record_tokens(texts)
    return tokens


def _user_texts(obj: dict) -> list[str]:
    return [
        block["text"]
        for message in obj["messages"]
        if message.get("role") == "user"
        for block in message["content"]
    ]


@dataclass
class Occurrences:
    """The chosen lines of one source: sorted line indices (repeats allowed), or ``None``
    for every line exactly once (the domain's usual case, which needs no index array)."""

    uri: str
    lines: np.ndarray | None
    rng: np.random.Generator  # routes each chosen line to a random bucket
    line_count: int
    digest: Digest = field(default_factory=Digest)  # the file's bytes, hashed while routing
    tally: TokenTally | None = None  # token estimates measured while routing, when wanted


@dataclass
class _Bucket:
    """Lines routed to one bucket: held in memory, or appended to a temporary file."""

    path: Path | None = None
    handle: IO[bytes] | None = None
    held: list[bytes] = field(default_factory=list)  # whole lines in routing order
    lines: int = 0

    def data(self) -> bytes:
        """The bucket's lines in routing order (a spilled bucket's file is removed)."""
        if self.path is None:
            held, self.held = self.held, []
            return b"".join(held)
        data = self.path.read_bytes()
        self.path.unlink()
        return data


def shuffle_write(
    sources: list[Occurrences],
    expected_bytes: int,
    writer: IO[bytes],
    shuffle_rng: Callable[[int], np.random.Generator],
    workdir: str | None = None,
) -> tuple[str, int, int]:
    """Write every chosen line once per choice, in a seeded random order.

    Pass two reads each source in order and appends each chosen line to a uniformly random
    bucket; pass three loads one bucket at a time, permutes its lines and writes them out.
    Independent uniform buckets followed by a uniform permutation within each bucket give a
    uniform permutation of the whole. Lines are moved as byte ranges (see
    :func:`~mixtune.mixing.gather.gather_lines`), never parsed. Returns (sha256, bytes,
    lines) of the output.
    """
    bucket_count, in_memory = bucket_layout(expected_bytes)
    with tempfile.TemporaryDirectory(prefix="mixtune-mix-", dir=workdir) as tmp:
        buckets = [_Bucket() for _ in range(in_memory)]
        buckets.extend(_file_bucket(Path(tmp), i) for i in range(in_memory, bucket_count))
        try:
            with Background() as worker:
                for source in sources:
                    _route(source, buckets, worker)
        finally:
            for bucket in buckets:
                if bucket.handle is not None:
                    bucket.handle.close()
        digest = Digest()
        written = 0
        with Background() as worker:
            for index, bucket in enumerate(buckets):
                if not bucket.lines:
                    continue
                data = bucket.data()
                bounds = line_bounds(data)
                count = len(bounds) - 1
                if count != bucket.lines:
                    raise RuntimeError(
                        f"bucket {index} holds {count} lines, {bucket.lines} were routed to it"
                    )
                out = gather_lines(data, bounds, shuffle_rng(index).permutation(count))
                written += count
                del data, bounds
                worker.submit(_hash_and_write, digest, writer, out)
                del out
    return digest.hexdigest(), digest.size, written


def bucket_layout(expected_bytes: int) -> tuple[int, int]:
    """(buckets, how many of them stay in memory) for about ``expected_bytes`` of chosen lines."""
    bucket_count = max(1, min(MAX_BUCKETS, -(-expected_bytes // BUCKET_BYTES)))
    if expected_bytes <= MEMORY_BYTES:
        return bucket_count, bucket_count
    return bucket_count, MEMORY_BYTES * bucket_count // expected_bytes


def spill_estimate(expected_bytes: int) -> int:
    """About how many bytes :func:`shuffle_write` puts in temporary files (the spilled buckets)."""
    bucket_count, in_memory = bucket_layout(expected_bytes)
    return expected_bytes * (bucket_count - in_memory) // bucket_count


def _hash_and_write(digest: Digest, writer: IO[bytes], data: memoryview) -> None:
    digest.update(data)
    writer.write(data)


def _file_bucket(folder: Path, index: int) -> _Bucket:
    path = folder / f"bucket-{index:05d}"
    return _Bucket(path=path, handle=open(path, "wb", buffering=SPILL_BUFFER_BYTES))


def line_bounds(block: bytes, ends: np.ndarray | None = None) -> np.ndarray:
    """Where each line of a block of whole lines starts, plus the block's end (int64)."""
    if ends is None:
        ends = line_ends(block)
    bounds = np.empty(len(ends) + 1, dtype=np.int64)
    bounds[0] = 0
    bounds[1:] = ends + 1
    return bounds


def _route(source: Occurrences, buckets: list[_Bucket], worker: Background) -> None:
    """Route a source's chosen lines, reading (and hashing) the whole file."""
    chosen = source.lines
    wanted = source.line_count if chosen is None else len(chosen)
    first = 0  # index of the block's first line in the file
    done = 0  # chosen lines routed so far
    for block in iter_line_blocks(source.uri, source.digest):
        ends = line_ends(block)
        count = len(ends)
        if source.tally is not None:
            source.tally.update(block, ends)
        if done < wanted:
            if chosen is None:
                local = None
                end = min(done + count, wanted)
            else:
                end = int(np.searchsorted(chosen, first + count, side="left"))
                local = chosen[done:end] - first
            if end > done:
                bounds = line_bounds(block, ends)
                _route_block(source.uri, first, block, bounds, local, end - done, source.rng, buckets, worker)
                done = end
        first += count
    if done != wanted or first != source.line_count:
        raise DatasetError(
            source.uri, "the file changed while mixing (its line count differs from the first pass)"
        )


def _route_block(
    uri: str,
    first: int,
    block: bytes,
    bounds: np.ndarray,
    local: np.ndarray | None,
    picks: int,
    rng: np.random.Generator,
    buckets: list[_Bucket],
    worker: Background,
) -> None:
    """Append a block's chosen lines (``local`` indices, or all) to random buckets."""
    # int16 (MAX_BUCKETS fits): numpy sorts small integers stably with a radix sort.
    owners = rng.integers(0, len(buckets), size=picks, dtype=np.int16)
    lengths = np.diff(bounds)
    order = np.argsort(owners, kind="stable")
    picked = local[order] if local is not None else order.astype(np.int64, copy=False)
    blank = np.flatnonzero(lengths[picked] == 1)  # a line that is only its newline
    if len(blank):
        raise DatasetError(
            uri, "blank line; a prepared file holds one record per line", first + int(picked[blank[0]]) + 1
        )
    grouped = gather_lines(block, bounds, picked)
    sizes = np.bincount(owners, minlength=len(buckets))
    filled = np.flatnonzero(sizes)
    counts = sizes[filled]
    byte_stops = np.cumsum(lengths[picked])[np.cumsum(counts) - 1]
    start = 0
    spilled: list[tuple[IO[bytes], memoryview]] = []
    for index, lines, stop in zip(filled.tolist(), counts.tolist(), byte_stops.tolist(), strict=True):
        bucket = buckets[index]
        if bucket.handle is None:
            bucket.held.append(bytes(grouped[start:stop]))  # a copy: a view would keep the block
        else:
            spilled.append((bucket.handle, grouped[start:stop]))
        bucket.lines += lines
        start = stop
    if spilled:
        # One hand-over per block: a queue round trip per bucket costs more than the write.
        worker.submit(_write_pieces, spilled)


def _write_pieces(writes: list[tuple[IO[bytes], memoryview]]) -> None:
    for handle, piece in writes:
        handle.write(piece)
