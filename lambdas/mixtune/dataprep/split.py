"""The seeded train/eval split and exact-duplicate detection, both in constant-ish memory.

Neither holds records: each record is decided as it streams by.

* Unlabelled data: a record goes to eval when its seeded 64-bit digest falls below
  ``eval_share`` of the range, so the split is random-looking, reproducible, and does not
  depend on the order of records.
* Classification data is stratified: within each label, records are assigned by a seeded
  systematic sample (every ``1/eval_share``-th record of that label, from a per-label
  offset derived from the seed), so each label's eval share is exact to one record.
"""

from __future__ import annotations

import hashlib
import math
from array import array

_MAX_LABELS = 100_000  # beyond this a "label" column is free text: fall back to digests
_RANGE = 1 << 64


class Splitter:
    """Decides train or eval per record from its digest and, when stratified, its label."""

    def __init__(self, eval_share: float = 0.1, seed: int = 0) -> None:
        self.eval_share = eval_share
        self.seed = seed
        self._threshold = int(eval_share * _RANGE)
        self._seen: dict[str, int] = {}
        self._offset: dict[str, float] = {}

    def is_eval(self, digest: int, label: str | None = None) -> bool:
        if self.eval_share <= 0:
            return False
        if label is None or (label not in self._seen and len(self._seen) >= _MAX_LABELS):
            return digest < self._threshold
        seen = self._seen.get(label)
        if seen is None:
            seen = 0
            key = hashlib.blake2b(f"{self.seed}\x00{label}".encode(), digest_size=8).digest()
            self._offset[label] = int.from_bytes(key, "big") / _RANGE
        self._seen[label] = seen + 1
        share, offset = self.eval_share, self._offset[label]
        return math.floor((seen + 1) * share + offset) > math.floor(seen * share + offset)


class DigestSet:
    """A set of 64-bit digests in an open-addressing table: 8 bytes a slot, not ~70 as in a set.

    Linear probing at a load factor of at most 0.7; zero marks an empty slot (a zero digest
    is stored as one, which merges it with digest one: a 2**-64 event).
    """

    def __init__(self, capacity: int = 1 << 18) -> None:
        size = 1 << max(4, (capacity - 1).bit_length())
        self._table = array("Q", [0]) * size
        self._mask = size - 1
        self._limit = int(size * 0.7)
        self.size = 0

    def add(self, digest: int) -> bool:
        """Store ``digest``; True when it was new, False when it was already there."""
        digest = digest or 1
        table, mask = self._table, self._mask
        index = digest & mask
        while True:
            found = table[index]
            if found == 0:
                table[index] = digest
                self.size += 1
                if self.size > self._limit:
                    self._grow()
                return True
            if found == digest:
                return False
            index = (index + 1) & mask

    def __contains__(self, digest: int) -> bool:
        digest = digest or 1
        table, mask = self._table, self._mask
        index = digest & mask
        while (found := table[index]) != 0:
            if found == digest:
                return True
            index = (index + 1) & mask
        return False

    def __len__(self) -> int:
        return self.size

    def _grow(self) -> None:
        old = self._table
        size = len(old) * 2
        self._table = table = array("Q", [0]) * size
        self._mask = mask = size - 1
        self._limit = int(size * 0.7)
        for digest in old:
            if digest:
                index = digest & mask
                while table[index]:
                    index = (index + 1) & mask
                table[index] = digest
