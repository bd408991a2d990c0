"""Allocation math and seeded choice: exact counts within one unit of every target."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mixtune.mixing.allocation import domain_total, largest_remainder, split_examples, split_tokens
from mixtune.mixing.sampling import choose_examples, choose_tokens, rng_for


@given(st.integers(0, 10_000), st.lists(st.integers(0, 1000), min_size=1, max_size=8))
def test_largest_remainder_sums_exactly_within_one_of_each_quota(total: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        weights[0] = 1
    counts = largest_remainder(total, weights)
    assert sum(counts) == total
    for count, weight in zip(counts, weights, strict=True):
        assert abs(count - Fraction(total * weight, sum(weights))) < 1


def test_largest_remainder_gives_leftovers_to_largest_remainders_then_first() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(7, [0.5, 0.3, 0.2]) == [4, 2, 1]
    assert largest_remainder(0, [0, 0]) == [0, 0]
    with pytest.raises(ValueError):
        largest_remainder(3, [0, 0])


percents = st.lists(st.integers(1, 100), min_size=1, max_size=5)


@given(st.integers(1, 50_000), st.floats(0.5, 100), percents, st.none() | st.integers(1, 100_000))
@settings(max_examples=300)
def test_realised_shares_within_one_record_of_target(
    domain: int, domain_percent: float, raw: list[int], total: int | None
) -> None:
    categories = {f"c{i}": Fraction(value, sum(raw)) * 100 for i, value in enumerate(raw)}
    domain_percent = float(Fraction(domain_percent).limit_denominator(1000))
    domain_count, counts = split_examples(domain, domain_percent, categories, total)
    mixed = domain_count + sum(counts.values())
    if total is None:
        assert domain_count == domain  # every domain record once
    else:
        assert mixed == total
    assert abs(domain_count - Fraction(domain_percent) / 100 * mixed) < 1
    general = (100 - Fraction(domain_percent)) / 100
    for name, count in counts.items():
        assert abs(count - general * Fraction(categories[name]) / 100 * mixed) < 1


def test_domain_total_keeps_every_domain_record_at_the_share() -> None:
    assert domain_total(300, 75) == 400
    assert domain_total(10, 100) == 10
    assert domain_total(1, 30) == 3  # 1 / 0.3 = 3.33 -> 3


def test_split_tokens_targets() -> None:
    mixed, domain, categories = split_tokens(750, 75, {"a": 40, "b": 60}, None)
    assert (mixed, domain) == (1000, 750)
    assert categories == {"a": 100, "b": 150}


def test_choose_examples_without_replacement_when_enough() -> None:
    pool = np.arange(100, dtype=np.int64)
    chosen = choose_examples(rng_for(1, "x"), pool, 40)
    assert len(np.unique(chosen)) == 40
    assert list(chosen) == sorted(chosen)
    assert np.array_equal(chosen, choose_examples(rng_for(1, "x"), pool, 40))
    assert not np.array_equal(chosen, choose_examples(rng_for(2, "x"), pool, 40))


def test_choose_examples_oversamples_evenly() -> None:
    pool = np.arange(10, dtype=np.int64) * 3
    chosen = choose_examples(rng_for(0, "x"), pool, 25)
    values, repeats = np.unique(chosen, return_counts=True)
    assert set(values) == set(pool)
    assert set(repeats) == {2, 3}
    assert repeats.sum() == 25


@given(
    st.lists(st.integers(1, 400), min_size=1, max_size=60),
    st.fractions(min_value=Fraction(1, 2), max_value=40_000),
    st.integers(0, 2**32),
)
@settings(max_examples=200)
def test_choose_tokens_stops_within_one_record_of_the_target(
    sizes: list[int], target: Fraction, seed: int
) -> None:
    tokens = np.asarray(sizes, dtype=np.int64)
    pool = np.arange(len(sizes), dtype=np.int64)
    chosen = choose_tokens(rng_for(seed, "t"), pool, tokens, target)
    realised = int(tokens[chosen].sum())
    assert abs(realised - target) <= Fraction(int(tokens.max()), 2)
    copies = int(target // int(tokens.sum()))
    _, repeats = np.unique(chosen, return_counts=True)
    assert repeats.max(initial=0) <= copies + 1
