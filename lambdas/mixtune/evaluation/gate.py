"""The promotion gate: the tuned model must gain on the domain and keep general ability within a budget.

Default rule ``credible`` (see docs/training.md, "The gate"): every check reads the confidence
interval of its base-vs-tuned delta, not only the point estimate.

* domain gain (points): passes when the interval's low end is at least ``min_domain_gain``
  (credibly at least the required gain); fails when its high end is below it;
* MMLU drop (points) and, when capped, the general-loss rise: pass when the interval's high end
  is within the budget (a drop over budget is not credible); fail when the low end is over it
  (credibly over budget).

Any failed check: REJECT. Every check passed: PROMOTE. Otherwise INCONCLUSIVE: the eval sets are
too small to tell, and the decision says how many items would decide at the same effect. The
``point`` rule (before intervals) compares point estimates only and never says INCONCLUSIVE.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, Field

from mixtune.evaluation.comparability import differences
from mixtune.evaluation.paired import Delta, paired_deltas
from mixtune.evaluation.result import EvalResult
from mixtune.evaluation.stats import DEFAULT_CONFIDENCE, DEFAULT_RESAMPLES, Interval

Verdict = Literal["PROMOTE", "REJECT", "INCONCLUSIVE"]
Outcome = Literal["pass", "fail", "undecided"]
CheckName = Literal["domain_gain", "general_drop", "general_loss_increase"]


class GatePolicy(BaseModel):
    """Thresholds in points (percentage points of accuracy / F1) and how they are read."""

    max_general_drop: float = Field(default=1.0, ge=0, description="MMLU points the tuned model may lose")
    min_domain_gain: float = Field(default=1.0, description="domain F1 points the tuned model must gain")
    max_general_loss_increase: float | None = Field(
        default=None, description="optional cap on the rise of the held-out general loss (nats)"
    )
    require_mmlu: bool = True
    rule: Literal["credible", "point"] = Field(
        default="credible",
        description="credible: decide on confidence intervals (INCONCLUSIVE when too few items); "
        "point: compare point estimates only",
    )
    confidence: float = Field(
        default=DEFAULT_CONFIDENCE, gt=0.5, lt=1.0, description="two-sided interval level"
    )
    resamples: int = Field(default=DEFAULT_RESAMPLES, ge=100, description="bootstrap resamples")
    seed: int = Field(default=0, description="seeds the bootstrap: same inputs, same decision")


class GateCheck(BaseModel):
    name: CheckName
    estimate: float  # points (loss: nats); general_drop > 0 means the tuned model is worse
    interval: Interval | None = None  # same unit and orientation as the estimate
    threshold: float
    direction: Literal["at_least", "at_most"]
    outcome: Outcome
    n: int  # eval items behind the check
    paired: bool = False
    items_needed: int | None = None  # undecided: items that would decide at the same effect
    reason: str


class GateDecision(BaseModel):
    verdict: Verdict
    promote: bool
    comparable: bool
    rule: Literal["credible", "point"] = "credible"
    domain_gain: float | None = None  # points
    general_drop: float | None = None  # MMLU points (positive: the tuned model is worse)
    general_loss_increase: float | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    items_needed: dict[str, int] = Field(default_factory=dict)  # per eval set, for INCONCLUSIVE
    reasons: list[str]

    def summary(self) -> str:
        return f"{self.verdict}: " + "; ".join(self.reasons)


def decide_gate(
    baseline: EvalResult,
    tuned: EvalResult,
    policy: GatePolicy | None = None,
    deltas: dict[str, Delta] | None = None,
) -> GateDecision:
    """PROMOTE, REJECT or INCONCLUSIVE (see the module doc); ``deltas`` from
    :func:`mixtune.evaluation.paired.paired_deltas` when the caller has them already."""
    policy = policy or GatePolicy()
    problems = differences(baseline, tuned)
    if problems:
        return GateDecision(
            verdict="REJECT",
            promote=False,
            comparable=False,
            rule=policy.rule,
            reasons=[f"not comparable: {problem}" for problem in problems],
        )
    if deltas is None:
        deltas = paired_deltas(
            baseline, tuned, confidence=policy.confidence, resamples=policy.resamples, seed=policy.seed
        )
    checks: list[GateCheck] = []
    reasons: list[str] = []
    missing_fail = False
    domain = deltas.get("domain")
    if domain is None:
        missing_fail = True
        reasons.append("no domain scores to compare")
    else:
        checks.append(_check("domain_gain", domain, 100.0, policy.min_domain_gain, "at_least", policy))
    mmlu = deltas.get("mmlu")
    if mmlu is None:
        if policy.require_mmlu:
            missing_fail = True
            reasons.append("no MMLU scores to compare")
    else:
        checks.append(_check("general_drop", mmlu, -100.0, policy.max_general_drop, "at_most", policy))
    loss = deltas.get("general_loss")
    if loss is not None and policy.max_general_loss_increase is not None:
        checks.append(
            _check("general_loss_increase", loss, 1.0, policy.max_general_loss_increase, "at_most", policy)
        )
    reasons.extend(check.reason for check in checks)
    outcomes = [check.outcome for check in checks]
    if missing_fail or "fail" in outcomes:
        verdict: Verdict = "REJECT"
    elif all(outcome == "pass" for outcome in outcomes):
        verdict = "PROMOTE"
    else:
        verdict = "INCONCLUSIVE"
    by_name = {check.name: check for check in checks}
    needed = {
        _EVAL_SET[check.name]: check.items_needed
        for check in checks
        if check.outcome == "undecided" and check.items_needed is not None
    }
    return GateDecision(
        verdict=verdict,
        promote=verdict == "PROMOTE",
        comparable=True,
        rule=policy.rule,
        domain_gain=by_name["domain_gain"].estimate if "domain_gain" in by_name else None,
        general_drop=by_name["general_drop"].estimate if "general_drop" in by_name else None,
        general_loss_increase=loss.estimate if loss is not None else None,
        checks=checks,
        items_needed=needed,
        reasons=reasons,
    )


_EVAL_SET: dict[CheckName, str] = {
    "domain_gain": "domain",
    "general_drop": "mmlu",
    "general_loss_increase": "general",
}
_LABELS: dict[CheckName, tuple[str, str, str]] = {  # what, unit, threshold word
    "domain_gain": ("domain gain", "pts", "required"),
    "general_drop": ("MMLU drop", "pts", "budget"),
    "general_loss_increase": ("general loss rise", "nats", "cap"),
}


def _check(
    name: CheckName, delta: Delta, scale: float, threshold: float, direction: str, policy: GatePolicy
) -> GateCheck:
    estimate = scale * delta.estimate
    interval = delta.interval.scaled(scale) if delta.interval is not None else None
    what, unit, word = _LABELS[name]
    digits = 3 if unit == "nats" else 2
    head = f"{what} {estimate:+.{digits}f} {unit}"
    meets = estimate >= threshold if direction == "at_least" else estimate <= threshold
    sign = (">=" if meets else "<") if direction == "at_least" else ("<=" if meets else ">")
    common = {
        "name": name,
        "estimate": estimate,
        "interval": interval,
        "threshold": threshold,
        "direction": direction,
        "n": delta.n,
        "paired": delta.paired,
    }
    if policy.rule == "point":
        outcome: Outcome = "pass" if meets else "fail"
        return GateCheck(**common, outcome=outcome, reason=f"{head} {sign} {word} {threshold:.{digits}f}")
    if interval is None:
        return GateCheck(
            **common,
            outcome="undecided",
            reason=f"{head}: no interval (an eval.json without intervals: rescore, or use rule 'point')",
        )
    ci = f"{policy.confidence:.0%} CI [{interval.low:+.{digits}f}, {interval.high:+.{digits}f}]"
    if direction == "at_least":
        outcome = (
            "pass" if interval.low >= threshold else ("fail" if interval.high < threshold else "undecided")
        )
    else:
        outcome = (
            "pass" if interval.high <= threshold else ("fail" if interval.low > threshold else "undecided")
        )
    verdicts = {
        ("at_least", "pass"): f"credibly >= {word} {threshold:.{digits}f}",
        ("at_least", "fail"): f"credibly < {word} {threshold:.{digits}f}",
        ("at_most", "pass"): f"credibly within {word} {threshold:.{digits}f}",
        ("at_most", "fail"): f"credibly over {word} {threshold:.{digits}f}",
    }
    if outcome != "undecided":
        return GateCheck(**common, outcome=outcome, reason=f"{head}, {ci}, {verdicts[(direction, outcome)]}")
    needed = items_to_decide(estimate, interval, threshold, delta.n)
    more = (
        f"about {needed:,} items would decide at this effect"
        if needed is not None
        else "the estimate sits on the threshold: no eval size decides it"
    )
    reason = (
        f"{head}, {ci}: too few items ({delta.n:,}) to tell it from {word} {threshold:.{digits}f}; {more}"
    )
    return GateCheck(**common, outcome="undecided", items_needed=needed, reason=reason)


def items_to_decide(estimate: float, interval: Interval, threshold: float, n: int) -> int | None:
    """Items at which the interval, shrinking as 1/sqrt(n) around the same estimate, clears the threshold."""
    gap = abs(estimate - threshold)
    side = (estimate - interval.low) if threshold < estimate else (interval.high - estimate)
    # An estimate on the threshold up to float rounding (1 MMLU question in 100 is 1.0000000000000002
    # points) is on it: no number of items decides it.
    if math.isclose(estimate, threshold, rel_tol=1e-9, abs_tol=1e-9) or side <= 0 or n <= 0:
        return None
    return max(n + 1, math.ceil(n * (side / gap) ** 2))
