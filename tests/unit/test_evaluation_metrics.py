from __future__ import annotations

import pytest

from mixtune.evaluation import (
    UNKNOWN_LABEL,
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


@pytest.mark.parametrize(
    "generated",
    [
        "card_lost, refund, card_arrival",  # the label list echoed back
        "not refund; it is card_lost",
        "card_arrival or card_lost",
    ],
)
def test_an_answer_naming_two_or_more_labels_is_unknown(generated: str) -> None:
    assert match_label(generated, LABELS) == UNKNOWN_LABEL


def test_a_label_inside_a_longer_matched_label_does_not_count_twice() -> None:
    labels = ["card", "card_lost", "refund"]
    assert match_label("I think: card lost", labels) == "card_lost"
    assert match_label("the card", labels) == "card"
    assert match_label("card lost, not refund", labels) == UNKNOWN_LABEL


def test_a_gold_answer_outside_the_label_set_is_an_error_not_a_free_hit() -> None:
    with pytest.raises(UnknownGoldError, match="'lost_card'"):
        gold_labels(["card_lost", "lost_card"], LABELS)
    assert gold_labels(["Card lost.", "refund"], LABELS) == ["card_lost", "refund"]
    # before: an unmapped gold became <unknown> and matched an unknown prediction as correct
    with pytest.raises(UnknownGoldError):
        classification_scores([UNKNOWN_LABEL, "refund"], [UNKNOWN_LABEL, "refund"], LABELS)


def test_classification_scores_carry_their_intervals() -> None:
    golds = ["a", "b"] * 50
    preds = ["a", "b"] * 40 + ["b", "a"] * 10
    scores = classification_scores(golds, preds)
    assert scores.accuracy_ci is not None and scores.accuracy_ci.method == "wilson"
    assert scores.accuracy_ci.low < scores.accuracy == 0.8 < scores.accuracy_ci.high
    assert (
        scores.macro_f1_ci is not None and scores.macro_f1_ci.low < scores.macro_f1 < scores.macro_f1_ci.high
    )
    free = freeform_scores(["paris"] * 30, ["Paris"] * 20 + ["Rome"] * 10)
    assert free.token_f1_ci is not None and free.token_f1_ci.low < free.token_f1 < free.token_f1_ci.high


def test_a_300_label_set_is_classification_whatever_the_count() -> None:
    answers = [f"intent_{i:03d}" for i in range(300)] * 3
    decision = detect_task(answers)
    assert decision.task == "classification"
    assert "300 distinct" in decision.rule and decision.rule.startswith("classification")


def test_a_banking77_sized_label_set_with_long_label_names_is_classification() -> None:
    labels = [f"balance_not_updated_after_cheque_or_cash_deposit_{i}" for i in range(77)]
    answers = [labels[(i * 7) % 77] for i in range(600)]
    assert detect_task(answers).task == "classification"


def test_short_answers_that_rarely_repeat_are_free_form_and_say_why() -> None:
    answers = [f"{1900 + i}" for i in range(200)] + ["yes"] * 20
    decision = detect_task(answers)
    assert decision.task == "freeform" and "do not repeat" in decision.rule
    assert detect_task(["a long free form answer that explains quite a few things"] * 30).task == "freeform"
