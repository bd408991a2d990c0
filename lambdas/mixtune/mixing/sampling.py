"""Seeded choice of records: without replacement unless a source is too small.

Each source draws from its own random stream, derived from the spec's seed and the
source's name, so adding a source to the catalog does not change what another one gives.
"""

from __future__ import annotations

import hashlib
from fractions import Fraction

import numpy as np


def rng_for(seed: int, key: str) -> np.random.Generator:
    """A generator for one purpose (``source:NAME``, ``domain``, ``shuffle``) under a seed."""
    words = np.frombuffer(hashlib.blake2b(key.encode(), digest_size=16).digest(), dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, *words.tolist()]))


def choose_examples(rng: np.random.Generator, pool: np.ndarray, count: int) -> np.ndarray:
    """``count`` line indices from ``pool``, sorted.

    Up to the pool size: without replacement (all of the pool, without drawing, when equal).
    Beyond it: every record ``count // n`` times plus a draw without replacement for the
    rest, so repeats are as even as they can be.
    """
    n = len(pool)
    if count < 0:
        raise ValueError("count must not be negative")
    if count == 0:
        return np.empty(0, dtype=np.int64)
    if n == 0:
        raise ValueError("cannot choose records from an empty source")
    copies, rest = divmod(count, n)
    parts = [np.tile(pool, copies)] if copies else []
    if rest:
        parts.append(pool[rng.choice(n, size=rest, replace=False)] if rest < n else pool)
    chosen = np.concatenate(parts).astype(np.int64, copy=False)
    chosen.sort(kind="stable")
    return chosen


def choose_tokens(
    rng: np.random.Generator, pool: np.ndarray, tokens: np.ndarray, target: Fraction
) -> np.ndarray:
    """Line indices from ``pool`` whose token sum is nearest ``target``, sorted.

    Records are taken in a seeded random order and the running sum stops at whichever side
    of the target is nearer, so the sum is within half of one record's tokens of the target.
    A target beyond the pool's total takes whole copies first (oversampling).
    """
    if target <= 0 or len(pool) == 0:
        if target > 0:
            raise ValueError("cannot choose records from an empty source")
        return np.empty(0, dtype=np.int64)
    pool_tokens = tokens[pool].astype(np.int64)
    pool_total = int(pool_tokens.sum())
    if pool_total == 0:
        raise ValueError("cannot reach a token target with records of zero tokens")
    copies = int(target // pool_total)
    remaining = target - copies * pool_total
    if remaining == 0 and copies:
        chosen = np.tile(pool, copies)
    else:
        order = rng.permutation(len(pool))
        running = np.cumsum(pool_tokens[order])
        # First position where the running sum reaches the remaining target.
        reach = int(np.searchsorted(running, float(remaining), side="left"))
        reach = min(reach, len(order) - 1)
        below = int(running[reach - 1]) if reach > 0 else 0
        take = reach if remaining - below <= int(running[reach]) - remaining else reach + 1
        chosen = np.concatenate([np.tile(pool, copies), pool[order[:take]]])
    chosen = chosen.astype(np.int64, copy=False)
    chosen.sort(kind="stable")
    return chosen
