"""Exact-duplicate detection in bounded memory.

The first ``memory_digests`` distinct 64-bit record digests are held in a :class:`DigestSet`
(8 bytes a slot), and a record whose digest is there is a duplicate at once. Past that
budget the set is frozen and every further kept record *spills*: its digest, its sequence
number and where it was written go to one of ``PARTITIONS`` files on disk, chosen by the
digest's top bits. At the end each partition (about ``1/PARTITIONS`` of the spilled
records) is read on its own, and the later occurrences of any digest seen more than once
are written to a second file per partition, which :meth:`Deduper.late_duplicates` merges
back in input order, streaming; the pipeline then moves those records to ``rejected.jsonl``.
Memory stays flat whatever the input size (and however many duplicates); the result is the
same as one big in-memory set (the first occurrence is kept), except that late duplicates
are found after the fact.
"""

from __future__ import annotations

import heapq
import shutil
import sys
import tempfile
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import IO, NamedTuple

from mixtune.dataprep.errors import SpillBudgetExceeded
from mixtune.dataprep.split import DigestSet

DEFAULT_MEMORY_DIGESTS = 250_000  # ~4 MB of table; beyond this, digests spill to disk
SPILL_BYTES_PER_RECORD = 24  # digest, sequence number, position and side: three uint64
PARTITIONS = 256
_PARTITION_SHIFT = 64 - (PARTITIONS.bit_length() - 1)
_FLUSH_ENTRIES = 3 * 1024  # array items (3 per record) buffered per partition: 24 KB


class LateDuplicate(NamedTuple):
    """A spilled record that repeats an earlier one: input sequence number and location."""

    seq: int
    in_eval: bool
    position: int  # its 0-based line in prepared.jsonl (or eval.jsonl when in_eval)
    digest: int


class Deduper:
    """Remembers record digests; exact, with memory bounded by ``memory_digests``.

    Use as a context manager (it removes its spill files). Per kept candidate call
    :meth:`first_sight`; when it returns True and :attr:`spilling` is set, the record is
    only provisionally new: report where it was written with :meth:`spill`. Once the input
    is done, :meth:`resolve` counts the late duplicates and :meth:`late_duplicates` streams
    them (as often as needed) in input order.
    """

    def __init__(
        self, memory_digests: int = DEFAULT_MEMORY_DIGESTS, spill_budget_bytes: int | None = None
    ) -> None:
        self._seen = DigestSet(min(memory_digests, 1 << 18))
        self._budget = memory_digests
        self._spill_budget = spill_budget_bytes
        self._max_spilled = (
            spill_budget_bytes // SPILL_BYTES_PER_RECORD if spill_budget_bytes else sys.maxsize
        )
        self.spilling = False
        self.spilled = 0
        self.late = 0
        self._resolved = False
        self._dir: Path | None = None
        self._buffers: list[array] = []
        self._files: list[IO[bytes] | None] = []

    def __enter__(self) -> Deduper:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def first_sight(self, digest: int) -> bool:
        """False when ``digest`` is a known duplicate; True when new (or not known yet)."""
        seen = self._seen
        if not self.spilling:
            if seen.size < self._budget:
                return seen.add(digest)
            self._start_spilling()
        return digest not in seen

    def spill(self, digest: int, seq: int, in_eval: bool, position: int) -> None:
        """Record a provisionally kept record (only while :attr:`spilling`)."""
        part = (digest or 1) >> _PARTITION_SHIFT
        buffer = self._buffers[part]
        buffer.append(digest or 1)  # the DigestSet stores 0 as 1 too
        buffer.append(seq)
        buffer.append(position << 1 | in_eval)
        self.spilled += 1
        if self.spilled > self._max_spilled:
            raise SpillBudgetExceeded(
                f"exact dedupe needs more than spill_budget_bytes={self._spill_budget:,} bytes of temporary "
                f"files ({SPILL_BYTES_PER_RECORD} per kept record past the first {self._budget:,}); "
                "prepare this file where more temporary space is available"
            )
        if len(buffer) >= _FLUSH_ENTRIES:
            self._flush(part)

    def resolve(self) -> int:
        """Find the late duplicates, one partition in memory at a time; how many there are."""
        if not self.spilling or self._resolved:
            return self.late
        self._resolved = True
        for part in range(PARTITIONS):
            self._flush(part)
            handle = self._files[part]
            if handle is None:
                continue
            handle.close()
            self._files[part] = None
            entries = array("Q")
            entries.frombytes((self._dir / f"{part:03d}.bin").read_bytes())  # type: ignore[operator]
            digests = entries[0::3]
            if len(set(digests)) == len(digests):
                continue  # the common case: nothing repeats in this partition
            repeated = {digest for digest, count in Counter(digests).items() if count > 1}
            groups: defaultdict[int, list[tuple[int, int]]] = defaultdict(list)
            for index, digest in enumerate(digests):
                if digest in repeated:
                    groups[digest].append((entries[3 * index + 1], entries[3 * index + 2]))
            found: list[tuple[int, int, int]] = []
            for digest, occurrences in groups.items():
                occurrences.sort()
                found.extend((seq, where, digest) for seq, where in occurrences[1:])  # the first stays
            found.sort()
            late = array("Q", [value for triple in found for value in triple])
            (self._dir / f"{part:03d}.late").write_bytes(late.tobytes())  # type: ignore[operator]
            self.late += len(found)
        self._buffers = [array("Q") for _ in range(PARTITIONS)]  # release the write buffers
        return self.late

    def late_duplicates(self) -> Iterator[LateDuplicate]:
        """The late duplicates found by :meth:`resolve`, in input order (streamed)."""
        if self._dir is None or not self.late:
            return iter(())
        runs = [_read_late(path) for path in sorted(self._dir.glob("*.late"))]
        return heapq.merge(*runs)

    def close(self) -> None:
        for handle in self._files:
            if handle is not None:
                handle.close()
        self._files = []
        self._buffers = []
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _start_spilling(self) -> None:
        self.spilling = True
        self._dir = Path(tempfile.mkdtemp(prefix="mixtune-dedupe-"))
        self._buffers = [array("Q") for _ in range(PARTITIONS)]
        self._files = [None] * PARTITIONS

    def _flush(self, part: int) -> None:
        buffer = self._buffers[part]
        if not buffer:
            return
        handle = self._files[part]
        if handle is None:
            handle = self._files[part] = open(self._dir / f"{part:03d}.bin", "ab")  # type: ignore[operator]  # noqa: SIM115
        buffer.tofile(handle)
        del buffer[:]


def _read_late(path: Path) -> Iterator[LateDuplicate]:
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * _FLUSH_ENTRIES):
            values = array("Q")
            values.frombytes(chunk)
            for index in range(0, len(values), 3):
                where = values[index + 1]
                yield LateDuplicate(values[index], bool(where & 1), where >> 1, values[index + 2])
