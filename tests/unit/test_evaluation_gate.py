from __future__ import annotations

import pytest

from mixtune.evaluation import DomainScores, EvalResult, GatePolicy, classification_scores, decide_gate
from mixtune.evaluation.mmlu import score


def _result(
    macro_hits: int, mmlu_correct: int, config_hash: str = "h1", adapter: str | None = None
) -> EvalResult:
    golds = ["a"] * 50 + ["b"] * 50
    preds = ["a"] * macro_hits + ["b"] * (50 - macro_hits) + ["b"] * 50
    return EvalResult(
        base_model="tiny",
        adapter=adapter,
        config={"x": 1},
        config_hash=config_hash,
        domain=DomainScores(task="classification", n=100, classification=classification_scores(golds, preds)),
        mmlu=score([("s", i < mmlu_correct) for i in range(1000)]),
    )


def test_gate_promotes_when_domain_rises_and_mmlu_holds() -> None:
    decision = decide_gate(_result(10, 400), _result(50, 395, adapter="x"))
    assert decision.promote
    assert decision.general_drop == pytest.approx(0.5)
    assert decision.domain_gain is not None and decision.domain_gain > 1.0


def test_gate_rejects_a_general_drop_over_budget() -> None:
    decision = decide_gate(_result(10, 400), _result(50, 380))
    assert not decision.promote
    assert "MMLU drop 2.00" in decision.summary()


def test_gate_rejects_without_domain_gain() -> None:
    decision = decide_gate(_result(10, 400), _result(10, 400), GatePolicy(min_domain_gain=1.0))
    assert not decision.promote


def test_gate_refuses_results_from_different_eval_configs() -> None:
    decision = decide_gate(_result(10, 400), _result(50, 400, config_hash="other"))
    assert not decision.promote
    assert not decision.comparable


def test_eval_result_round_trips_through_json() -> None:
    result = _result(30, 300)
    assert EvalResult.from_json(result.to_json()) == result
