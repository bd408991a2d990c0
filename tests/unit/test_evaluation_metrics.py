from __future__ import annotations

import pytest

from mixtune.evaluation import (
    UNKNOWN_LABEL,
    classification_scores,
    exact_match,
    freeform_scores,
    looks_like_classification,
    match_label,
    normalize_label,
    token_f1,
)

LABELS = ["card_lost", "refund", "card_arrival"]


def test_normalize_label_ignores_case_punctuation_and_underscores() -> None:
    assert normalize_label("  Card_Lost.\nmore text") == normalize_label("card lost") == "card lost"


@pytest.mark.parametrize(
    ("generated", "expected"),
    [
        ("card_lost", "card_lost"),
        ("Card lost.", "card_lost"),
        ("card arrival please", "card_arrival"),
        ("The intent is refund.", "refund"),
        ("no idea", UNKNOWN_LABEL),
    ],
)
def test_match_label_maps_generations_onto_the_label_set(generated: str, expected: str) -> None:
    assert match_label(generated, LABELS) == expected


def test_classification_scores_perfect_predictions() -> None:
    golds = ["refund", "card_lost", "refund"]
    scores = classification_scores(golds, golds, LABELS)
    assert scores.accuracy == 1.0
    assert scores.micro_f1 == 1.0
    # card_arrival never occurs: F1 0 by convention, pulling the macro average down
    assert scores.macro_f1 == pytest.approx(2 / 3)


def test_classification_scores_known_values() -> None:
    golds = ["a", "a", "b", "b"]
    preds = ["a", "b", "b", UNKNOWN_LABEL]
    scores = classification_scores(golds, preds)
    # a: tp1 fp0 fn1 -> 2/3 ; b: tp1 fp1 fn1 -> 1/2
    assert scores.macro_f1 == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert scores.accuracy == 0.5
    # pooled: tp2 fp1 fn2 -> 4/7
    assert scores.micro_f1 == pytest.approx(4 / 7)
    assert scores.unknown_share == 0.25


def test_classification_scores_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="predictions"):
        classification_scores(["a"], [])


def test_token_f1_and_exact_match() -> None:
    assert token_f1("The cat sat", "a cat sat down") == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))
    assert token_f1("", "") == 1.0
    assert token_f1("dog", "cat") == 0.0
    assert exact_match("The Answer!", "answer") == 1.0
    scores = freeform_scores(["paris", "rome"], ["Paris.", "Milan"])
    assert scores.exact_match == 0.5
    assert scores.token_f1 == 0.5


def test_looks_like_classification() -> None:
    assert looks_like_classification(["refund", "card_lost", "refund", "card_lost"])
    assert not looks_like_classification(
        ["a long free form answer that explains things", "another quite different answer here"]
    )


def test_many_distinct_short_answers_are_not_labels() -> None:
    assert not looks_like_classification([f"answer{i}" for i in range(30)])
