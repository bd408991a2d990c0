"""Intervals and paired tests for evaluation scores: pure numpy, cross-checked against scipy in tests.

* one accuracy: Wilson score interval;
* one macro-F1 (or any mean over items): seeded percentile bootstrap over items;
* one token-weighted loss: its standard error (a ratio estimator over records);
* base vs tuned on the same items: Newcombe's score interval for a paired difference of
  accuracies (method 10, 1998) with McNemar's exact test, and a paired bootstrap (the same
  resampled items on both sides) for macro-F1, mean scores and the loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
_CHUNK = 250  # resamples drawn at once: bounds memory at _CHUNK x items


class Interval(BaseModel):
    """A two-sided confidence interval in the unit of the score it belongs to."""

    low: float
    high: float
    confidence: float = DEFAULT_CONFIDENCE
    method: str

    def scaled(self, factor: float) -> Interval:
        """The same interval in another unit (x100 for points); a negative factor swaps the ends."""
        ends = sorted((self.low * factor, self.high * factor))
        return self.model_copy(update={"low": ends[0], "high": ends[1]})

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def text(self, digits: int = 3) -> str:
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"


def z_value(confidence: float) -> float:
    """The two-sided normal quantile: 1.96 at 0.95."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


# --- one proportion ----------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> Interval:
    """Wilson's score interval for a proportion (good at small n and near 0 or 1, unlike Wald's)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n and n > 0, got {successes}/{n}")
    z = z_value(confidence)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return Interval(
        low=max(0.0, centre - half), high=min(1.0, centre + half), confidence=confidence, method="wilson"
    )


# --- paired proportions ------------------------------------------------------------------------


def paired_table(base: Sequence[bool], tuned: Sequence[bool]) -> tuple[int, int, int, int]:
    """(both right, only base right, only tuned right, both wrong) over the same items."""
    if len(base) != len(tuned):
        raise ValueError(f"{len(base)} base outcomes but {len(tuned)} tuned ones")
    b = np.asarray(base, dtype=bool)
    t = np.asarray(tuned, dtype=bool)
    return int((b & t).sum()), int((b & ~t).sum()), int((~b & t).sum()), int((~b & ~t).sum())


def newcombe_paired_interval(
    both: int, base_only: int, tuned_only: int, neither: int, confidence: float = DEFAULT_CONFIDENCE
) -> Interval:
    """Interval for accuracy(tuned) - accuracy(base) on the same items (Newcombe 1998, method 10).

    Built from the two Wilson intervals and the correlation of the paired outcomes; unlike a
    bootstrap it stays honest when few answers changed (no discordant pair gives a non-zero width).
    """
    n = both + base_only + tuned_only + neither
    p_tuned, p_base = (both + tuned_only) / n, (both + base_only) / n
    l1, u1 = _ends(wilson_interval(both + tuned_only, n, confidence))
    l2, u2 = _ends(wilson_interval(both + base_only, n, confidence))
    margins = (both + tuned_only) * (base_only + neither) * (both + base_only) * (tuned_only + neither)
    phi = 0.0
    if margins > 0:
        cross = both * neither - base_only * tuned_only
        corrected = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
        phi = corrected / math.sqrt(margins)
    delta = p_tuned - p_base
    down = math.sqrt(
        max(0.0, (p_tuned - l1) ** 2 - 2 * phi * (p_tuned - l1) * (u2 - p_base) + (u2 - p_base) ** 2)
    )
    up = math.sqrt(
        max(0.0, (u1 - p_tuned) ** 2 - 2 * phi * (u1 - p_tuned) * (p_base - l2) + (p_base - l2) ** 2)
    )
    return Interval(
        low=max(-1.0, delta - down),
        high=min(1.0, delta + up),
        confidence=confidence,
        method="newcombe-paired",
    )


def _ends(interval: Interval) -> tuple[float, float]:
    return interval.low, interval.high


def mcnemar_exact_p(base_only: int, tuned_only: int) -> float:
    """Two-sided exact McNemar p-value: the discordant pairs as a fair coin (binomial, p=0.5)."""
    m = base_only + tuned_only
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, k) for k in range(min(base_only, tuned_only) + 1))
    return min(1.0, 2 * tail / 2**m)


# --- loss ----------------------------------------------------------------------------------------


def ratio_standard_error(sums: Sequence[float], counts: Sequence[int]) -> float:
    """Standard error of sum(sums) / sum(counts) with records as the sampling unit.

    The held-out loss is a mean over tokens, but tokens of one record are not independent:
    the linearised (delta-method) variance of a ratio estimator treats each record as one draw.
    """
    s = np.asarray(sums, dtype=float)
    c = np.asarray(counts, dtype=float)
    n = len(s)
    if n < 2 or c.sum() == 0:
        return float("nan")
    ratio = s.sum() / c.sum()
    residual = s - ratio * c
    return float(math.sqrt(n / (n - 1) * float((residual**2).sum())) / c.sum())


# --- bootstrap -----------------------------------------------------------------------------------

Statistic = Callable[[np.ndarray], np.ndarray]  # (resamples, n) item indices -> (resamples,) values


def _resampled(statistic: Statistic, n: int, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, resamples, _CHUNK):
        rows = min(_CHUNK, resamples - start)
        out.append(statistic(rng.integers(0, n, size=(rows, n))))
    return np.concatenate(out)


def bootstrap_interval(
    statistic: Statistic,
    n: int,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    method: str = "bootstrap-percentile",
) -> Interval:
    """Percentile interval of ``statistic`` over items resampled with replacement (seeded)."""
    if n <= 0:
        raise ValueError("no items to resample")
    values = _resampled(statistic, n, resamples, seed)
    alpha = 1 - confidence
    low, high = np.quantile(values, [alpha / 2, 1 - alpha / 2])
    return Interval(low=float(low), high=float(high), confidence=confidence, method=method)


def macro_f1_rows(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> Statistic:
    """Macro-F1 over ``n_labels`` labels of each resample; codes ``>= n_labels`` are unknown answers.

    The same convention as :func:`mixtune.evaluation.metrics.classification_scores`: an unknown
    answer is a false negative of its gold label and a false positive of none.
    """
    gold = np.asarray(gold, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    width = n_labels + 1
    pred_bucket = np.minimum(pred, n_labels)  # every unknown code in one bucket outside the labels

    def statistic(index: np.ndarray) -> np.ndarray:
        rows = index.shape[0]
        offset = (np.arange(rows) * width)[:, None]
        g, p = gold[index], pred_bucket[index]
        hit = g == p
        tp = np.bincount((offset + g).ravel(), weights=hit.ravel(), minlength=rows * width)
        gold_count = np.bincount((offset + g).ravel(), minlength=rows * width)
        pred_count = np.bincount((offset + p).ravel(), minlength=rows * width)
        tp, gold_count, pred_count = (
            a.reshape(rows, width)[:, :n_labels] for a in (tp, gold_count, pred_count)
        )
        denominator = gold_count + pred_count  # 2tp + fp + fn
        f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=float), where=denominator > 0)
        return f1.mean(axis=1)

    return statistic


def mean_rows(values: Sequence[float]) -> Statistic:
    data = np.asarray(values, dtype=float)
    return lambda index: data[index].mean(axis=1)


def ratio_rows(sums: Sequence[float], counts: Sequence[int]) -> Statistic:
    s = np.asarray(sums, dtype=float)
    c = np.asarray(counts, dtype=float)
    return lambda index: s[index].sum(axis=1) / np.maximum(c[index].sum(axis=1), 1e-12)


def difference(tuned: Statistic, base: Statistic) -> Statistic:
    """The paired statistic: both sides on the same resampled items."""
    return lambda index: tuned(index) - base(index)


def bootstrap_standard_error(
    statistic: Statistic, n: int, *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> float:
    return float(np.std(_resampled(statistic, n, resamples, seed), ddof=1))
