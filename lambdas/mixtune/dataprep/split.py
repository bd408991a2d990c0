"""The seeded train/eval split and exact-duplicate detection, both in constant-ish memory.

Neither holds records: each record is decided as it streams by, from the digest of its
normalised prompt (:mod:`.prompts`), so every record of one prompt (the same question with
another answer or label, or a near duplicate by normalisation) lands on the same side.

* Unlabelled data: a record goes to eval when its prompt's seeded 64-bit digest falls below
  ``eval_share`` of the range, so the split is random-looking, reproducible, independent of
  the order of records, and needs no memory to keep a prompt on one side.
* Classification data is stratified: within each label, new prompts are assigned by a
  seeded systematic sample (every ``1/eval_share``-th new prompt of that label, from a
  per-label offset derived from the seed), so each label's eval share is exact to one
  prompt; a prompt seen before keeps its side (a dict of about 80 bytes per prompt for the
  first ``memory_prompts`` distinct prompts; prompts first seen past that budget are decided
  by their digest, like unlabelled data, which keeps their later copies on the same side too).
"""

from __future__ import annotations

import hashlib
import math
from array import array

_MAX_LABELS = 100_000  # beyond this a "label" column is free text: fall back to digests
_RANGE = 1 << 64


DEFAULT_MEMORY_PROMPTS = 250_000  # the stratified split remembers this many prompts' sides (~20 MB)


class Splitter:
    """Decides train or eval per record from its prompt digest and, when stratified, its label."""

    def __init__(self, eval_share: float = 0.1, seed: int = 0, memory_prompts: int = DEFAULT_MEMORY_PROMPTS):
        self.eval_share = eval_share
        self.seed = seed
        self._threshold = int(eval_share * _RANGE)
        self._seen: dict[str, int] = {}
        self._offset: dict[str, float] = {}
        self._sides: dict[int, bool] = {}  # prompt digest -> eval?; a dict: its lookups are the fastest
        self._budget = memory_prompts

    def is_eval(self, prompt_digest: int, label: str | None = None) -> bool:
        if self.eval_share <= 0:
            return False
        if label is None:
            return prompt_digest < self._threshold
        sides = self._sides
        side = sides.get(prompt_digest)
        if side is not None:
            return side
        if len(sides) >= self._budget:
            return prompt_digest < self._threshold  # not stored: its later copies decide the same way
        if label not in self._seen and len(self._seen) >= _MAX_LABELS:
            side = prompt_digest < self._threshold
        else:
            side = self._systematic(label)
        sides[prompt_digest] = side
        return side

    def _systematic(self, label: str) -> bool:
        seen = self._seen.get(label)
        if seen is None:
            seen = 0
            key = hashlib.blake2b(f"{self.seed}\x00{label}".encode(), digest_size=8).digest()
            self._offset[label] = int.from_bytes(key, "big") / _RANGE
        self._seen[label] = seen + 1
        share, offset = self.eval_share, self._offset[label]
        return math.floor((seen + 1) * share + offset) > math.floor(seen * share + offset)


class DigestSet:
    """A set of 64-bit digests: 8 bytes a slot (a Python set of ints costs ~70 bytes an entry).

    256 open-addressing tables with linear probing, picked by the digest's top byte, each
    at a load factor of at most 0.7. Sharding keeps the peak of a resize to one shard's
    copy instead of a second whole table. Zero marks an empty slot (a zero digest is stored
    as one, merging the two: a 2**-64 event).
    """

    _SHARDS = 256

    def __init__(self, capacity: int = 1 << 18) -> None:
        per_shard = 1 << max(4, (capacity // self._SHARDS - 1).bit_length())
        self._tables = [array("Q", [0]) * per_shard for _ in range(self._SHARDS)]
        self._masks = [per_shard - 1] * self._SHARDS
        self._room = [int(per_shard * 0.7)] * self._SHARDS  # inserts left before a resize
        self.size = 0

    def add(self, digest: int) -> bool:
        """Store ``digest``; True when it was new, False when it was already there."""
        digest = digest or 1
        shard = digest >> 56
        table, mask = self._tables[shard], self._masks[shard]
        index = digest & mask
        while True:
            found = table[index]
            if found == 0:
                table[index] = digest
                self.size += 1
                self._room[shard] -= 1
                if self._room[shard] <= 0:
                    self._grow(shard)
                return True
            if found == digest:
                return False
            index = (index + 1) & mask

    def __contains__(self, digest: int) -> bool:
        digest = digest or 1
        shard = digest >> 56
        table, mask = self._tables[shard], self._masks[shard]
        index = digest & mask
        while (found := table[index]) != 0:
            if found == digest:
                return True
            index = (index + 1) & mask
        return False

    def __len__(self) -> int:
        return self.size

    def _grow(self, shard: int) -> None:
        old = self._tables[shard]
        size = len(old) * 2
        table = array("Q", [0]) * size
        mask = size - 1
        used = 0
        for digest in old:
            if digest:
                used += 1
                index = digest & mask
                while table[index]:
                    index = (index + 1) & mask
                table[index] = digest
        self._tables[shard], self._masks[shard] = table, mask
        self._room[shard] = int(size * 0.7) - used
