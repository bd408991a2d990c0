"""Which arm of a mix-ratio sweep to keep (pure).

Each arm was trained on another mix and scored like a single run: its gate decision against the
base model (:func:`mixtune.evaluation.decide_gate`), a domain score and a general score (MMLU
accuracy, else the negated general loss; the loss when the gate caps it: :func:`ranks_on_mmlu`),
with their confidence intervals when the evaluation recorded them.

* **Frontier**: the arms no other arm beats on both scores (Pareto, over every scored arm).
* **Choice**: among the arms that pass the gate and that no other passing arm beats on both
  scores, the highest domain score; when arms cannot be told apart on the domain score (their
  intervals overlap that best arm's; without intervals, equal scores), the one with the most
  general data among them, since more general data forgets less. No arm passes: REJECT, and the
  frontier is still reported; INCONCLUSIVE instead when an arm's eval sets were too small to decide.

The choice is made among the passing arms' own frontier, not the frontier of all arms: an arm the
gate could not confirm (a wider interval, say) never blocks an arm it could.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from mixtune.evaluation.gate import GateDecision, GatePolicy


class ArmScores(BaseModel):
    """One arm's figures, as the choice reads them."""

    arm: str
    label: str = ""
    general_percent: float = Field(description="share of general data in the arm's mix, in percent")
    domain: float  # the domain headline (macro-F1 or token F1), 0..1
    general: float  # MMLU accuracy, or the negated general loss: higher is better either way
    domain_interval: tuple[float, float] | None = None
    general_interval: tuple[float, float] | None = None
    passes: bool  # the arm's gate decision was PROMOTE
    verdict: str = ""


class Selection(BaseModel):
    verdict: Literal["PROMOTE", "REJECT", "INCONCLUSIVE"]
    chosen: str | None = None
    frontier: list[str]  # arm ids, by domain score, best first
    passing: list[str]
    tied: list[str] = Field(default_factory=list)  # passing arms the best could not be told from
    reasons: list[str]


def dominates(a: ArmScores, b: ArmScores) -> bool:
    """``a`` at least as good as ``b`` on both scores and better on one."""
    return a.domain >= b.domain and a.general >= b.general and (a.domain > b.domain or a.general > b.general)


def frontier(arms: list[ArmScores]) -> list[ArmScores]:
    """The arms no other arm dominates, best domain score first."""
    kept = [arm for arm in arms if not any(dominates(other, arm) for other in arms)]
    return sorted(kept, key=lambda arm: (-arm.domain, -arm.general, arm.arm))


def indistinguishable(a: ArmScores, b: ArmScores) -> bool:
    """Their domain scores cannot be told apart: the intervals overlap (equal scores without them)."""
    if a.domain_interval is None or b.domain_interval is None:
        return a.domain == b.domain
    return a.domain_interval[0] <= b.domain_interval[1] and b.domain_interval[0] <= a.domain_interval[1]


def select_arm(arms: list[ArmScores]) -> Selection:
    """The arm to promote, or REJECT (INCONCLUSIVE) when none passes the gate (see the module doc)."""
    front = frontier(arms)
    passing = [arm for arm in arms if arm.passes]
    front_ids = [arm.arm for arm in front]
    if not passing:
        undecided = [arm.arm for arm in arms if arm.verdict == "INCONCLUSIVE"]
        reasons = [f"no arm passed the gate ({len(arms)} scored)"]
        if undecided:
            # one of them might pass on larger eval sets: not a refusal
            reasons.append(f"too few eval items to decide for {', '.join(undecided)}")
        if front:
            reasons.append("frontier: " + ", ".join(_describe(arm) for arm in front))
        verdict = "INCONCLUSIVE" if undecided else "REJECT"
        return Selection(verdict=verdict, frontier=front_ids, passing=[], reasons=reasons)
    candidates = frontier(passing)
    best = candidates[0]
    tied = [arm for arm in candidates if indistinguishable(arm, best)]
    chosen = max(tied, key=lambda arm: (arm.general_percent, arm.domain, arm.general, _order(arm.arm)))
    reasons = [f"{len(passing)} of {len(arms)} arms passed the gate"]
    if chosen.arm == best.arm:
        reasons.append(f"chose {_describe(chosen)}: the highest domain score among them")
    else:
        reasons.append(
            f"chose {_describe(chosen)}: its domain score cannot be told from the best"
            f" ({_describe(best)}) and it has more general data ({chosen.general_percent:g}%"
            f" vs {best.general_percent:g}%)"
        )
    return Selection(
        verdict="PROMOTE",
        chosen=chosen.arm,
        frontier=front_ids,
        passing=[arm.arm for arm in passing],
        tied=[arm.arm for arm in tied if arm.arm != chosen.arm],
        reasons=reasons,
    )


def _order(arm_id: str) -> int:
    """Last resort of the tie-break, so the choice does not depend on the arms' order: the
    earlier arm id wins."""
    return -int(arm_id[1:]) if arm_id[1:].isdigit() else 0


def _describe(arm: ArmScores) -> str:
    name = f"{arm.arm} ({arm.label})" if arm.label else arm.arm
    return f"{name} domain {100 * arm.domain:.1f}, general {_general_text(arm.general)}"


def _general_text(general: float) -> str:
    return f"{100 * general:.1f}" if general >= 0 else f"loss {-general:.3f}"


def _interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return float(value[0]), float(value[1])
    return None


def arm_scores(
    arm: str,
    label: str,
    general_percent: float,
    tuned: dict[str, Any],
    decision: GateDecision,
    use_mmlu: bool,
) -> ArmScores:
    """An arm's figures from its tuned model's headline metrics
    (:func:`mixtune.evaluation.comparison.headline_metrics`) and its gate decision. ``use_mmlu``:
    whether every arm has MMLU (else the general loss is the general score, for every arm alike)."""
    if use_mmlu:
        general = float(tuned["mmlu_accuracy"])
        general_interval = _interval(tuned.get("mmlu_accuracy_ci"))
    else:
        loss = tuned.get("general_loss")
        general = -float(loss) if loss is not None else 0.0
        se = tuned.get("general_loss_se")
        general_interval = (general - 1.96 * se, general + 1.96 * se) if loss is not None and se else None
    return ArmScores(
        arm=arm,
        label=label,
        general_percent=general_percent,
        domain=float(tuned.get("domain_f1", 0.0)),
        general=general,
        domain_interval=_interval(tuned.get("domain_f1_ci")),
        general_interval=general_interval,
        passes=decision.promote,
        verdict=decision.verdict,
    )


def ranks_on_mmlu(tuned: list[dict[str, Any]], policy: GatePolicy) -> bool:
    """Whether the arms' general score is MMLU accuracy (else the held-out general loss): MMLU when
    every arm has it, unless the gate caps the general loss and every arm has that. Then the loss
    is what the gate holds the arms to, and for a model near chance on MMLU the only measure of
    forgetting that moves."""
    caps_loss = policy.max_general_loss_increase is not None
    if caps_loss and tuned and all(numbers.get("general_loss") is not None for numbers in tuned):
        return False
    return bool(tuned) and all("mmlu_accuracy" in numbers for numbers in tuned)
