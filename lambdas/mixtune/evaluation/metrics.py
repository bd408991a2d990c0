"""Domain metrics: label normalisation, classification F1 and free-form token F1 / exact match."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from mixtune.evaluation.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_RESAMPLES,
    Interval,
    bootstrap_interval,
    macro_f1_rows,
    mean_rows,
    wilson_interval,
)

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
    """Map a generated answer onto the label set; ``UNKNOWN_LABEL`` when nothing or several match.

    An exact (normalised) match wins; otherwise the answer must name exactly one label as whole
    words ("The intent is refund." -> refund). Two or more distinct labels ("not refund_status;
    it is card_lost", or the label list echoed back) are unknown: a guess is not an answer. A
    label found only inside a longer label that also matched ("card" in "card lost") does not count.
    """
    norm = normalize_label(prediction)
    by_norm = {normalize_label(label): label for label in labels}
    if norm in by_norm:
        return by_norm[norm]
    words = norm.split()
    spans: dict[str, list[tuple[int, int]]] = {}
    for key in by_norm:
        key_words = key.split()
        width = len(key_words)
        found = [
            (i, i + width)
            for i in range(len(words) - width + 1)
            if width and words[i : i + width] == key_words
        ]
        if found:
            spans[key] = found
    named = {
        key for key, found in spans.items() if any(not _inside_longer(span, key, spans) for span in found)
    }
    return by_norm[named.pop()] if len(named) == 1 else UNKNOWN_LABEL


def _inside_longer(span: tuple[int, int], key: str, spans: dict[str, list[tuple[int, int]]]) -> bool:
    start, end = span
    return any(
        other_start <= start and end <= other_end and (other_end - other_start) > (end - start)
        for other, found in spans.items()
        if other != key
        for other_start, other_end in found
    )


class UnknownGoldError(ValueError):
    """Gold answers that are not in the label set: scoring them would count misses as hits."""


def gold_labels(golds: Sequence[str], labels: Sequence[str]) -> list[str]:
    """Each gold answer as its label (normalised exact match); any other gold is an error."""
    by_norm = {normalize_label(label): label for label in labels}
    mapped = [by_norm.get(normalize_label(gold)) for gold in golds]
    missing = sorted({gold for gold, label in zip(golds, mapped, strict=True) if label is None})
    if missing:
        shown = ", ".join(repr(g) for g in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise UnknownGoldError(
            f"{len(missing)} gold answer(s) are not in the label set ({shown}): add them to --labels "
            "or fix the eval data"
        )
    return [label for label in mapped if label is not None]


class ClassificationScores(BaseModel):
    n: int
    accuracy: float
    macro_f1: float
    micro_f1: float
    unknown_share: float
    per_label_f1: dict[str, float]
    accuracy_ci: Interval | None = None  # Wilson
    macro_f1_ci: Interval | None = None  # seeded bootstrap over items


def label_codes(values: Sequence[str], label_set: Sequence[str]) -> list[int]:
    """Index of each value in ``label_set``; -1 for an answer outside it (unknown)."""
    index = {label: i for i, label in enumerate(label_set)}
    return [index.get(v, -1) for v in values]


def classification_scores(
    golds: Sequence[str],
    predictions: Sequence[str],
    labels: Sequence[str] | None = None,
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> ClassificationScores:
    """Scores over the label set (default: the gold labels); unmatched predictions count as misses.

    Macro-F1 averages per-label F1 over the label set; micro-F1 pools counts, where a prediction
    outside the label set is a false negative but not a false positive of any label. Accuracy
    gets a Wilson interval, macro-F1 a seeded percentile bootstrap over items.
    """
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} gold labels but {len(predictions)} predictions")
    label_set = sorted(set(labels) if labels else set(golds))
    if strays := sorted(set(golds) - set(label_set)):
        raise UnknownGoldError(f"gold labels outside the label set: {', '.join(map(repr, strays[:5]))}")
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
    intervals: dict[str, Interval] = {}
    if n:
        intervals["accuracy_ci"] = wilson_interval(total_tp, n, confidence)
        gold_codes = np.asarray(label_codes(golds, label_set))
        pred_codes = np.asarray(
            [c if c >= 0 else len(label_set) for c in label_codes(predictions, label_set)]
        )
        intervals["macro_f1_ci"] = bootstrap_interval(
            macro_f1_rows(gold_codes, pred_codes, len(label_set)),
            n,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
    return ClassificationScores(
        n=n,
        accuracy=total_tp / n if n else 0.0,
        macro_f1=sum(per_label.values()) / len(per_label) if per_label else 0.0,
        micro_f1=_f1(total_tp, total_fp, total_fn),
        unknown_share=sum(1 for p in predictions if p not in label_set) / n if n else 0.0,
        per_label_f1=per_label,
        **intervals,
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
    token_f1_ci: Interval | None = None  # seeded bootstrap over items
    exact_match_ci: Interval | None = None  # Wilson


def per_item_freeform(golds: Sequence[str], predictions: Sequence[str]) -> tuple[list[float], list[float]]:
    """(token F1, exact match) of each answer."""
    if len(golds) != len(predictions):
        raise ValueError(f"{len(golds)} gold answers but {len(predictions)} predictions")
    pairs = list(zip(predictions, golds, strict=True))
    return [token_f1(p, g) for p, g in pairs], [exact_match(p, g) for p, g in pairs]


def freeform_scores(
    golds: Sequence[str],
    predictions: Sequence[str],
    *,
    confidence: float = DEFAULT_CONFIDENCE,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> FreeformScores:
    f1s, matches = per_item_freeform(golds, predictions)
    n = len(golds)
    if not n:
        return FreeformScores(n=0, token_f1=0.0, exact_match=0.0)
    return FreeformScores(
        n=n,
        token_f1=sum(f1s) / n,
        exact_match=sum(matches) / n,
        token_f1_ci=bootstrap_interval(
            mean_rows(f1s), n, confidence=confidence, resamples=resamples, seed=seed
        ),
        exact_match_ci=wilson_interval(round(sum(matches)), n, confidence),
    )


# A task is classification when its answers are short, single-line and repeat: whatever the
# number of labels (Banking77 has 77, Amazon's reference task 1,420), as long as it stays a label
# set (a few thousand at most) and few answers occur only once.
MAX_LABEL_WORDS = 6
MAX_LABELS = 5000
MAX_SINGLETON_SHARE = 0.1
MIN_MEAN_REPEATS = 2.0


class TaskDecision(BaseModel):
    task: Literal["classification", "freeform"]
    rule: str  # which rule decided, in words (stored in eval.json)


def detect_task(answers: Sequence[str]) -> TaskDecision:
    """Classification or free-form, from the gold answers alone, with the rule that decided."""
    if not answers:
        return TaskDecision(task="freeform", rule="no answers")
    counts = Counter(normalize_label(a) for a in answers)
    n, distinct = len(answers), len(counts)
    longest = max(len(a.split()) for a in answers)
    multiline = sum(1 for a in answers if "\n" in a.strip())
    singletons = sum(1 for c in counts.values() if c == 1)
    facts = (
        f"{n} answers, {distinct} distinct, longest {longest} word(s), "
        f"{singletons / n:.0%} seen once, {n / distinct:.1f} per distinct answer"
    )
    if multiline or longest > MAX_LABEL_WORDS:
        why = f"{multiline} multi-line" if multiline else f"an answer of {longest} words > {MAX_LABEL_WORDS}"
        return TaskDecision(task="freeform", rule=f"free-form: {why} ({facts})")
    if distinct > MAX_LABELS:
        return TaskDecision(
            task="freeform", rule=f"free-form: more than {MAX_LABELS} distinct answers ({facts})"
        )
    if singletons / n > MAX_SINGLETON_SHARE or n / distinct < MIN_MEAN_REPEATS:
        return TaskDecision(
            task="freeform",
            rule=(
                f"free-form: short answers that do not repeat (need <= {MAX_SINGLETON_SHARE:.0%} seen once and "
                f">= {MIN_MEAN_REPEATS:g} per distinct answer; {facts})"
            ),
        )
    return TaskDecision(task="classification", rule=f"classification: short answers that repeat ({facts})")


def looks_like_classification(answers: Sequence[str]) -> bool:
    return detect_task(answers).task == "classification"
