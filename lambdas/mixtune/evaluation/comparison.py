"""Base model against tuned model: the headline numbers, their deltas and the gate decision."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mixtune.evaluation.gate import GateDecision, GatePolicy, decide_gate
from mixtune.evaluation.result import EvalResult


def headline_metrics(result: EvalResult) -> dict[str, Any]:
    """The numbers a person compares, from one ``EvalResult``."""
    out: dict[str, Any] = {"config_hash": result.config_hash}
    if result.domain is not None:
        out["domain_task"] = result.domain.task
        out["domain_f1"] = result.domain.headline
        out["domain_n"] = result.domain.n
    if result.mmlu is not None:
        out["mmlu_accuracy"] = result.mmlu.micro_accuracy
        out["mmlu_n"] = result.mmlu.n
    if result.general is not None:
        out["general_loss"] = result.general.loss
    return out


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


class Comparison(BaseModel):
    """What a run records of its evaluation: both sides' numbers, the deltas and the gate."""

    baseline: dict[str, Any]
    tuned: dict[str, Any]
    deltas: dict[str, float]
    decision: GateDecision

    def run_metrics(self, baseline_cached: bool) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "tuned": self.tuned,
            "deltas": self.deltas,
            "baseline_cached": baseline_cached,
        }


def compare(baseline: EvalResult, tuned: EvalResult, policy: GatePolicy) -> Comparison:
    base_numbers, tuned_numbers = headline_metrics(baseline), headline_metrics(tuned)
    return Comparison(
        baseline=base_numbers,
        tuned=tuned_numbers,
        deltas=deltas(base_numbers, tuned_numbers),
        decision=decide_gate(baseline, tuned, policy),
    )
