"""Tuned minus base on the same eval items: each delta with its interval.

Paired where both ``eval.json`` files carry per-item outcomes for the same items (the default
since schema 2): Newcombe's paired score interval and McNemar's exact test for MMLU accuracy, a
paired bootstrap (the same resampled items on both sides) for the domain headline and the
general loss. Without per-item outcomes (older files) the two sides' own intervals are combined
as if independent (MOVER, Newcombe's square-and-add), which is wider: correlated scores of one
model before and after a LoRA vary together.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import BaseModel

from mixtune.evaluation.result import DomainScores, EvalResult, GeneralLoss
from mixtune.evaluation.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Interval,
    Statistic,
    bootstrap_interval,
    difference,
    macro_f1_rows,
    mcnemar_exact_p,
    mean_rows,
    newcombe_paired_interval,
    paired_table,
    ratio_rows,
    z_value,
)

DeltaName = Literal["domain", "mmlu", "general_loss"]


class Delta(BaseModel):
    """Tuned minus base in the score's unit (F1 and accuracy as fractions, loss in nats)."""

    estimate: float
    interval: Interval | None = None
    n: int  # items behind it
    paired: bool = False
    p_value: float | None = None  # McNemar's exact test, MMLU only
    discordant: int | None = None  # MMLU questions answered right by only one of the two models


def paired_deltas(
    baseline: EvalResult,
    tuned: EvalResult,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> dict[DeltaName, Delta]:
    """The deltas both results allow: ``domain`` (headline), ``mmlu`` (micro accuracy), ``general_loss``."""
    out: dict[DeltaName, Delta] = {}
    options = {"confidence": confidence, "resamples": resamples, "seed": seed}
    if baseline.domain is not None and tuned.domain is not None:
        out["domain"] = _domain_delta(baseline.domain, tuned.domain, **options)
    if baseline.mmlu is not None and tuned.mmlu is not None:
        b, t = baseline.mmlu, tuned.mmlu
        estimate = t.micro_accuracy - b.micro_accuracy
        if b.items is not None and t.items is not None and b.items.ids == t.items.ids and b.items.ids:
            both, base_only, tuned_only, neither = paired_table(b.items.correct, t.items.correct)
            out["mmlu"] = Delta(
                estimate=estimate,
                interval=newcombe_paired_interval(both, base_only, tuned_only, neither, confidence),
                n=b.n,
                paired=True,
                p_value=mcnemar_exact_p(base_only, tuned_only),
                discordant=base_only + tuned_only,
            )
        else:
            out["mmlu"] = Delta(
                estimate=estimate,
                interval=_mover(b.micro_accuracy, b.micro_accuracy_ci, t.micro_accuracy, t.micro_accuracy_ci),
                n=min(b.n, t.n),
            )
    if baseline.general is not None and tuned.general is not None:
        out["general_loss"] = _loss_delta(baseline.general, tuned.general, **options)
    return out


def _same_items(base_ids: list[str] | None, tuned_ids: list[str] | None) -> bool:
    return base_ids is not None and base_ids == tuned_ids and len(base_ids) > 0


def _domain_delta(
    base: DomainScores, tuned: DomainScores, *, confidence: float, resamples: int, seed: int
) -> Delta:
    estimate = tuned.headline - base.headline
    b, t = base.items, tuned.items
    statistic: Statistic | None = None
    if b is not None and t is not None and _same_items(b.ids, t.ids) and base.task == tuned.task:
        if b.gold is not None and t.gold is not None and b.predicted is not None and t.predicted is not None:
            if b.labels == t.labels and b.gold == t.gold and b.labels:
                unknown = len(b.labels)
                gold = np.asarray(b.gold)
                base_pred = np.asarray([c if c >= 0 else unknown for c in b.predicted])
                tuned_pred = np.asarray([c if c >= 0 else unknown for c in t.predicted])
                statistic = difference(
                    macro_f1_rows(gold, tuned_pred, unknown), macro_f1_rows(gold, base_pred, unknown)
                )
        elif b.token_f1 is not None and t.token_f1 is not None:
            statistic = difference(mean_rows(t.token_f1), mean_rows(b.token_f1))
    if statistic is not None and b is not None:
        interval = _paired_bootstrap(statistic, len(b.ids), confidence, resamples, seed)
        return Delta(estimate=estimate, interval=interval, n=base.n, paired=True)
    return Delta(
        estimate=estimate,
        interval=_mover(base.headline, base.headline_ci, tuned.headline, tuned.headline_ci),
        n=min(base.n, tuned.n),
    )


def _loss_delta(
    base: GeneralLoss, tuned: GeneralLoss, *, confidence: float, resamples: int, seed: int
) -> Delta:
    estimate = tuned.loss - base.loss
    b, t = base.items, tuned.items
    if b is not None and t is not None and _same_items(b.ids, t.ids):
        statistic = difference(ratio_rows(t.loss_sums, t.tokens), ratio_rows(b.loss_sums, b.tokens))
        interval = _paired_bootstrap(statistic, len(b.ids), confidence, resamples, seed)
        return Delta(estimate=estimate, interval=interval, n=base.n, paired=True)
    interval = None
    if base.se is not None and tuned.se is not None and math.isfinite(base.se) and math.isfinite(tuned.se):
        half = z_value(confidence) * math.hypot(base.se, tuned.se)
        interval = Interval(
            low=estimate - half, high=estimate + half, confidence=confidence, method="normal-unpaired"
        )
    return Delta(estimate=estimate, interval=interval, n=min(base.n, tuned.n))


def _paired_bootstrap(statistic: Statistic, n: int, confidence: float, resamples: int, seed: int) -> Interval:
    return bootstrap_interval(
        statistic, n, confidence=confidence, resamples=resamples, seed=seed, method="paired-bootstrap"
    )


def _mover(base: float, base_ci: Interval | None, tuned: float, tuned_ci: Interval | None) -> Interval | None:
    """Interval of tuned - base from the two sides' own intervals, as if independent (MOVER)."""
    if base_ci is None or tuned_ci is None:
        return None
    estimate = tuned - base
    down = math.hypot(tuned - tuned_ci.low, base_ci.high - base)
    up = math.hypot(tuned_ci.high - tuned, base - base_ci.low)
    return Interval(
        low=estimate - down, high=estimate + up, confidence=base_ci.confidence, method="mover-unpaired"
    )
