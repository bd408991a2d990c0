"""The statistics behind every interval, cross-checked against scipy on fixed data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixtune.evaluation.stats import (
    bootstrap_interval,
    bootstrap_standard_error,
    difference,
    macro_f1_rows,
    mcnemar_exact_p,
    mean_rows,
    newcombe_paired_interval,
    paired_table,
    ratio_rows,
    ratio_standard_error,
    wilson_interval,
)

scipy_stats = pytest.importorskip("scipy.stats", reason="scipy is in the dev extra")


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 40), (12, 40), (400, 1000), (999, 1000), (40, 40)])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_wilson_interval_matches_scipy(k: int, n: int, confidence: float) -> None:
    ours = wilson_interval(k, n, confidence)
    theirs = scipy_stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert ours.low == pytest.approx(theirs.low, abs=1e-12)
    assert ours.high == pytest.approx(theirs.high, abs=1e-12)


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 5), (3, 9), (10, 10), (25, 40), (300, 350)])
def test_mcnemar_exact_p_matches_a_binomial_test_on_discordant_pairs(b: int, c: int) -> None:
    expected = 1.0 if b + c == 0 else scipy_stats.binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-9)


def _macro_f1(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    scores = []
    for label in range(n_labels):
        tp = int(((gold == label) & (pred == label)).sum())
        fp = int(((gold != label) & (pred == label)).sum())
        fn = int(((gold == label) & (pred != label)).sum())
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))


def _labels_and_predictions(n: int = 300, labels: int = 5, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, labels, n)
    pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, labels + 1, n))  # code 5: unknown
    return gold, pred


def test_vectorised_macro_f1_equals_the_per_label_definition() -> None:
    gold, pred = _labels_and_predictions()
    statistic = macro_f1_rows(gold, pred, 5)
    index = np.random.default_rng(0).integers(0, len(gold), (7, len(gold)))
    expected = [_macro_f1(gold[row], pred[row], 5) for row in index]
    assert statistic(index) == pytest.approx(expected)


def test_macro_f1_bootstrap_interval_agrees_with_scipy_percentile_bootstrap() -> None:
    gold, pred = _labels_and_predictions()
    ours = bootstrap_interval(macro_f1_rows(gold, pred, 5), len(gold), resamples=4000, seed=1)
    theirs = scipy_stats.bootstrap(
        (gold, pred),
        lambda g, p: _macro_f1(g, p, 5),
        paired=True,
        vectorized=False,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(2),
    ).confidence_interval
    # two independent Monte Carlo runs of the same percentile bootstrap
    assert ours.low == pytest.approx(theirs.low, abs=0.01)
    assert ours.high == pytest.approx(theirs.high, abs=0.01)
    assert ours.low < _macro_f1(gold, pred, 5) < ours.high


def test_bootstrap_is_reproducible_for_a_seed() -> None:
    gold, pred = _labels_and_predictions()
    statistic = macro_f1_rows(gold, pred, 5)
    assert bootstrap_interval(statistic, len(gold), seed=7) == bootstrap_interval(
        statistic, len(gold), seed=7
    )
    assert bootstrap_interval(statistic, len(gold), seed=7) != bootstrap_interval(
        statistic, len(gold), seed=8
    )


def test_paired_bootstrap_of_a_mean_difference_agrees_with_scipy() -> None:
    rng = np.random.default_rng(5)
    base = rng.random(200)
    tuned = np.clip(base + rng.normal(0.05, 0.1, 200), 0, 1)
    ours = bootstrap_interval(difference(mean_rows(tuned), mean_rows(base)), 200, resamples=4000, seed=0)
    theirs = scipy_stats.bootstrap(
        (tuned, base),
        lambda t, b, axis=-1: np.mean(t, axis=axis) - np.mean(b, axis=axis),
        paired=True,
        n_resamples=4000,
        method="percentile",
        random_state=np.random.default_rng(1),
    ).confidence_interval
    assert ours.low == pytest.approx(theirs.low, abs=0.004)
    assert ours.high == pytest.approx(theirs.high, abs=0.004)
    # pairing removes the shared per-item variation: far narrower than either side's own spread
    assert ours.high - ours.low < 0.05


def test_newcombe_paired_interval_agrees_with_a_paired_bootstrap_on_many_items() -> None:
    rng = np.random.default_rng(11)
    base = rng.random(4000) < 0.45
    flip = rng.random(4000) < 0.12
    tuned = np.where(flip, ~base, base)
    interval = newcombe_paired_interval(*paired_table(base, tuned))
    boot = bootstrap_interval(
        difference(mean_rows(tuned.astype(float)), mean_rows(base.astype(float))), 4000, resamples=4000
    )
    assert interval.low == pytest.approx(boot.low, abs=0.003)
    assert interval.high == pytest.approx(boot.high, abs=0.003)


def test_newcombe_keeps_a_width_when_no_answer_changed() -> None:
    # a bootstrap would say [0, 0] here; 40 identical answers do not prove a budget of 1 point
    interval = newcombe_paired_interval(both=12, base_only=0, tuned_only=0, neither=28)
    assert interval.low < -0.01 and interval.high > 0.01


def test_ratio_standard_error_matches_the_bootstrap_of_a_token_weighted_loss() -> None:
    rng = np.random.default_rng(2)
    tokens = rng.integers(5, 120, 300)
    sums = tokens * rng.gamma(4.0, 0.4, 300)
    se = ratio_standard_error(sums.tolist(), tokens.tolist())
    boot = bootstrap_standard_error(ratio_rows(sums, tokens), 300, resamples=4000)
    assert se == pytest.approx(boot, rel=0.1)
    assert math.isnan(ratio_standard_error([1.0], [3]))
