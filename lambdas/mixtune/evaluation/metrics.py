"""Domain metrics: label normalisation, classification F1 and free-form token F1 / exact match."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

from pydantic import BaseModel

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPACE = re.compile(r"\s+")
UNKNOWN_LABEL = "<unknown>"


def normalize_label(text: str) -> str:
    """Lowercase, first non-empty line, punctuation to spaces (``card_lost`` == ``Card lost.``)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    first = lines[0] if lines else ""
    first = first.lower().replace("_", " ").replace("-", " ")
    return _SPACE.sub(" ", _PUNCT.sub(" ", first)).strip()


def match_label(prediction: str, labels: Sequence[str]) -> str:
    """Map a generated answer onto the label set; ``UNKNOWN_LABEL`` when nothing matches.

    Exact (normalised) match first, then the longest label the answer starts with, then the
    longest label it contains as whole words: models often add "The intent is ..." or a period.
    """
    norm = normalize_label(prediction)
    by_norm = {normalize_label(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    ordered = sorted(by_norm.items(), key=lambda item: -len(item[0]))
    for key, label in ordered:
        if key and norm.startswith(key + " "):
            return label
    padded = f" {norm} "
    for key, label in ordered:
        if key and f" {key} " in padded:
            return label
    return UNKNOWN_LABEL


class ClassificationScores(BaseModel):
    n: int
    accuracy: float
    macro_f1: float
    micro_f1: float
    unknown_share: float
    per_label_f1: dict[str, float]


def classification_scores(
    golds: Sequence[str], predictions: Sequence[str], labels: Sequence[str] | None = None
) -> ClassificationScores:
    """Scores over the label set (default: the gold labels); unmatched predictions count as misses.

    Macro-F1 averages per-label F1 over the label set; micro-F1 pools counts, where a prediction
    outside the label set is a false negative but not a false positive of any label.
    """
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} gold labels but {len(predictions)} predictions")
    label_set = sorted(set(labels) if labels else set(golds))
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for gold, pred in zip(golds, predictions, strict=True):
        if gold == pred:
            tp[gold] += 1
            continue
        fn[gold] += 1
        if pred in label_set:
            fp[pred] += 1
    per_label = {label: _f1(tp[label], fp[label], fn[label]) for label in label_set}
    total_tp, total_fp, total_fn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    n = len(golds)
    return ClassificationScores(
        n=n,
        accuracy=total_tp / n if n else 0.0,
        macro_f1=sum(per_label.values()) / len(per_label) if per_label else 0.0,
        micro_f1=_f1(total_tp, total_fp, total_fn),
        unknown_share=sum(1 for p in predictions if p not in label_set) / n if n else 0.0,
        per_label_f1=per_label,
    )


def _f1(tp: int, fp: int, fn: int) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def normalize_answer(text: str) -> str:
    """SQuAD-style: lowercase, drop punctuation and articles, collapse whitespace."""
    text = _PUNCT.sub(" ", text.lower())
    return _SPACE.sub(" ", _ARTICLES.sub(" ", text)).strip()


def token_f1(prediction: str, gold: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


class FreeformScores(BaseModel):
    n: int
    token_f1: float
    exact_match: float


def freeform_scores(golds: Sequence[str], predictions: Sequence[str]) -> FreeformScores:
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} gold answers but {len(predictions)} predictions")
    n = len(golds)
    pairs = list(zip(predictions, golds, strict=True))
    return FreeformScores(
        n=n,
        token_f1=sum(token_f1(p, g) for p, g in pairs) / n if n else 0.0,
        exact_match=sum(exact_match(p, g) for p, g in pairs) / n if n else 0.0,
    )


def looks_like_classification(answers: Sequence[str], max_labels: int = 64, max_words: int = 4) -> bool:
    """Short single-line answers from a small set; on 20+ answers each label must recur on average."""
    if not answers:
        return False
    distinct = {normalize_label(a) for a in answers}
    short = all(len(a.split()) <= max_words and "\n" not in a.strip() for a in answers)
    recurring = len(answers) < 20 or len(distinct) <= len(answers) // 2
    return short and len(distinct) <= max_labels and recurring
