"""Pure evaluation code (no torch): domain metrics, MMLU helpers, ``EvalResult`` and the gate."""

from mixtune.evaluation.gate import GateDecision, GatePolicy, decide_gate
from mixtune.evaluation.metrics import (
    UNKNOWN_LABEL,
    ClassificationScores,
    FreeformScores,
    classification_scores,
    exact_match,
    freeform_scores,
    looks_like_classification,
    match_label,
    normalize_label,
    token_f1,
)
from mixtune.evaluation.mmlu import MmluQuestion, MmluScores, build_prompt, load_mmlu, pick_letter
from mixtune.evaluation.result import DomainScores, EvalResult, GeneralLoss

__all__ = [
    "UNKNOWN_LABEL",
    "ClassificationScores",
    "DomainScores",
    "EvalResult",
    "FreeformScores",
    "GateDecision",
    "GatePolicy",
    "GeneralLoss",
    "MmluQuestion",
    "MmluScores",
    "build_prompt",
    "classification_scores",
    "decide_gate",
    "exact_match",
    "freeform_scores",
    "load_mmlu",
    "looks_like_classification",
    "match_label",
    "normalize_label",
    "pick_letter",
    "token_f1",
]
