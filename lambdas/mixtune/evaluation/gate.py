"""The promotion gate: the tuned model must gain on the domain and keep MMLU within a budget."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mixtune.evaluation.result import EvalResult


class GatePolicy(BaseModel):
    """Thresholds in points (percentage points of accuracy / F1)."""

    max_general_drop: float = Field(default=1.0, ge=0, description="MMLU points the tuned model may lose")
    min_domain_gain: float = Field(default=1.0, description="domain F1 points the tuned model must gain")
    max_general_loss_increase: float | None = Field(
        default=None, description="optional cap on the rise of the held-out general loss (nats)"
    )
    require_mmlu: bool = True


class GateDecision(BaseModel):
    promote: bool
    comparable: bool
    domain_gain: float | None = None  # points
    general_drop: float | None = None  # MMLU points (positive: the tuned model is worse)
    general_loss_increase: float | None = None
    reasons: list[str]

    def summary(self) -> str:
        verdict = "PROMOTE" if self.promote else "REJECT"
        return f"{verdict}: " + "; ".join(self.reasons)


def decide_gate(baseline: EvalResult, tuned: EvalResult, policy: GatePolicy | None = None) -> GateDecision:
    policy = policy or GatePolicy()
    if baseline.config_hash != tuned.config_hash:
        return GateDecision(
            promote=False,
            comparable=False,
            reasons=[f"eval configs differ ({baseline.config_hash} vs {tuned.config_hash}): not comparable"],
        )
    reasons: list[str] = []
    ok = True

    domain_gain = None
    if baseline.domain is None or tuned.domain is None:
        ok = False
        reasons.append("no domain scores to compare")
    else:
        domain_gain = 100 * (tuned.domain.headline - baseline.domain.headline)
        passed = domain_gain >= policy.min_domain_gain
        ok &= passed
        reasons.append(
            f"domain gain {domain_gain:+.2f} pts {'>=' if passed else '<'} required {policy.min_domain_gain:.2f}"
        )

    general_drop = None
    if baseline.mmlu is None or tuned.mmlu is None:
        if policy.require_mmlu:
            ok = False
            reasons.append("no MMLU scores to compare")
    else:
        general_drop = 100 * (baseline.mmlu.micro_accuracy - tuned.mmlu.micro_accuracy)
        passed = general_drop <= policy.max_general_drop
        ok &= passed
        reasons.append(
            f"MMLU drop {general_drop:.2f} pts {'<=' if passed else '>'} budget {policy.max_general_drop:.2f}"
        )

    loss_increase = None
    if baseline.general is not None and tuned.general is not None:
        loss_increase = tuned.general.loss - baseline.general.loss
        if policy.max_general_loss_increase is not None:
            passed = loss_increase <= policy.max_general_loss_increase
            ok &= passed
            reasons.append(
                f"general loss {loss_increase:+.3f} {'<=' if passed else '>'} cap {policy.max_general_loss_increase:.3f}"
            )

    return GateDecision(
        promote=ok,
        comparable=True,
        domain_gain=domain_gain,
        general_drop=general_drop,
        general_loss_increase=loss_increase,
        reasons=reasons,
    )
