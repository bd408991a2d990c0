"""Base model against tuned model: the headline numbers with intervals, paired deltas and the gate."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel

from mixtune.evaluation.gate import GateDecision, GatePolicy, decide_gate
from mixtune.evaluation.paired import Delta, paired_deltas
from mixtune.evaluation.result import EvalResult
from mixtune.evaluation.stats import DEFAULT_CONFIDENCE, Interval, z_value


def _ends(interval: Interval | None, scale: float = 1.0) -> list[float] | None:
    if interval is None:
        return None
    scaled = interval.scaled(scale)
    return [round(scaled.low, 6), round(scaled.high, 6)]


def headline_metrics(result: EvalResult) -> dict[str, Any]:
    """The numbers a person compares, from one ``EvalResult``; ``*_ci`` are 95 % intervals [low, high]
    in the same unit (the general loss's is +-1.96 standard errors, ``general_loss_se``)."""
    out: dict[str, Any] = {"config_hash": result.config_hash}
    if result.domain is not None:
        out["domain_task"] = result.domain.task
        out["domain_f1"] = result.domain.headline
        out["domain_n"] = result.domain.n
        if (ci := _ends(result.domain.headline_ci)) is not None:
            out["domain_f1_ci"] = ci
        if (classification := result.domain.classification) is not None:
            out["domain_accuracy"] = classification.accuracy
            if (ci := _ends(classification.accuracy_ci)) is not None:
                out["domain_accuracy_ci"] = ci
    if result.mmlu is not None:
        out["mmlu_accuracy"] = result.mmlu.micro_accuracy
        out["mmlu_n"] = result.mmlu.n
        if (ci := _ends(result.mmlu.micro_accuracy_ci)) is not None:
            out["mmlu_accuracy_ci"] = ci
    if result.general is not None:
        out["general_loss"] = result.general.loss
        out["general_n"] = result.general.n
        if result.general.se is not None and math.isfinite(result.general.se):
            out["general_loss_se"] = result.general.se
            half = z_value(DEFAULT_CONFIDENCE) * result.general.se
            out["general_loss_ci"] = [
                round(result.general.loss - half, 6),
                round(result.general.loss + half, 6),
            ]
    return out


_DELTA_NAMES = {
    "domain": ("domain_f1_points", 100.0),
    "mmlu": ("mmlu_points", 100.0),
    "general_loss": ("general_loss", 1.0),
}


def deltas(baseline: dict[str, Any], tuned: dict[str, Any]) -> dict[str, float]:
    """Tuned minus baseline; F1 and accuracy in points, loss in nats."""
    out: dict[str, float] = {}
    for key, name, scale in (
        ("domain_f1", "domain_f1_points", 100.0),
        ("mmlu_accuracy", "mmlu_points", 100.0),
        ("general_loss", "general_loss", 1.0),
    ):
        if key in baseline and key in tuned:
            out[name] = round(scale * (tuned[key] - baseline[key]), 6)
    return out


class DeltaInterval(BaseModel):
    """One delta's interval in the unit of ``deltas`` (points, or nats for the loss)."""

    low: float
    high: float
    confidence: float
    method: str
    paired: bool
    n: int
    p_value: float | None = None  # McNemar's exact test (MMLU)


def delta_intervals(paired: dict[str, Delta]) -> dict[str, DeltaInterval]:
    out: dict[str, DeltaInterval] = {}
    for key, delta in paired.items():
        if delta.interval is None:
            continue
        name, scale = _DELTA_NAMES[key]
        scaled = delta.interval.scaled(scale)
        out[name] = DeltaInterval(
            low=round(scaled.low, 6),
            high=round(scaled.high, 6),
            confidence=scaled.confidence,
            method=scaled.method,
            paired=delta.paired,
            n=delta.n,
            p_value=delta.p_value,
        )
    return out


class Comparison(BaseModel):
    """What a run records of its evaluation: both sides' numbers, the deltas with their intervals
    and the gate."""

    baseline: dict[str, Any]
    tuned: dict[str, Any]
    deltas: dict[str, float]
    delta_intervals: dict[str, DeltaInterval] = {}
    decision: GateDecision

    def intervals_as_json(self) -> dict[str, dict[str, Any]]:
        return {k: v.model_dump(mode="json") for k, v in self.delta_intervals.items()}

    def run_metrics(self, baseline_cached: bool) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "tuned": self.tuned,
            "deltas": self.deltas,
            "delta_intervals": self.intervals_as_json(),
            "verdict": self.decision.verdict,
            "baseline_cached": baseline_cached,
        }


def compare(baseline: EvalResult, tuned: EvalResult, policy: GatePolicy) -> Comparison:
    base_numbers, tuned_numbers = headline_metrics(baseline), headline_metrics(tuned)
    paired = paired_deltas(
        baseline, tuned, confidence=policy.confidence, resamples=policy.resamples, seed=policy.seed
    )
    return Comparison(
        baseline=base_numbers,
        tuned=tuned_numbers,
        deltas=deltas(base_numbers, tuned_numbers),
        delta_intervals=delta_intervals(paired),
        decision=decide_gate(baseline, tuned, policy, deltas=paired),
    )
