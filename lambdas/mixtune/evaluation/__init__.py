"""Pure evaluation code (no torch): domain metrics, MMLU helpers, statistics, ``EvalResult``, the gate."""

from mixtune.evaluation.gate import GateCheck, GateDecision, GatePolicy, Verdict, decide_gate
from mixtune.evaluation.metrics import (
    UNKNOWN_LABEL,
    ClassificationScores,
    FreeformScores,
    TaskDecision,
    UnknownGoldError,
    classification_scores,
    detect_task,
    exact_match,
    freeform_scores,
    gold_labels,
    looks_like_classification,
    match_label,
    normalize_label,
    token_f1,
)
from mixtune.evaluation.mmlu import MmluQuestion, MmluScores, build_prompt, load_mmlu, pick_letter
from mixtune.evaluation.paired import Delta, paired_deltas
from mixtune.evaluation.result import DomainItems, DomainScores, EvalResult, GeneralLoss, LossItems
from mixtune.evaluation.sizing import Sizing, detectable_change, items_for_change, size_eval_sets
from mixtune.evaluation.stats import Interval

__all__ = [
    "UNKNOWN_LABEL",
    "ClassificationScores",
    "Delta",
    "DomainItems",
    "DomainScores",
    "EvalResult",
    "FreeformScores",
    "GateCheck",
    "GateDecision",
    "GatePolicy",
    "GeneralLoss",
    "Interval",
    "LossItems",
    "MmluQuestion",
    "MmluScores",
    "Sizing",
    "TaskDecision",
    "UnknownGoldError",
    "Verdict",
    "build_prompt",
    "classification_scores",
    "decide_gate",
    "detect_task",
    "detectable_change",
    "exact_match",
    "freeform_scores",
    "gold_labels",
    "items_for_change",
    "load_mmlu",
    "looks_like_classification",
    "match_label",
    "normalize_label",
    "paired_deltas",
    "pick_letter",
    "size_eval_sets",
    "token_f1",
]
