from __future__ import annotations

import orjson
import pytest

from mixtune.evaluation import (
    DomainItems,
    DomainScores,
    EvalResult,
    GatePolicy,
    GeneralLoss,
    LossItems,
    classification_scores,
    decide_gate,
)
from mixtune.evaluation.comparison import compare
from mixtune.evaluation.gate import items_to_decide
from mixtune.evaluation.metrics import label_codes
from mixtune.evaluation.mmlu import score
from mixtune.evaluation.stats import Interval

POINT = GatePolicy(rule="point")


def _domain(golds: list[str], preds: list[str]) -> DomainScores:
    labels = sorted(set(golds))
    return DomainScores(
        task="classification",
        n=len(golds),
        classification=classification_scores(golds, preds, labels),
        items=DomainItems(
            ids=[f"d{i}" for i in range(len(golds))],
            labels=labels,
            gold=label_codes(golds, labels),
            predicted=label_codes(preds, labels),
        ),
    )


def _result(
    domain_hits: int,
    mmlu_correct: list[bool],
    *,
    n_domain: int = 100,
    config_hash: str = "h1",
    adapter: str | None = None,
    base_model: str = "tiny",
    items: bool = True,
) -> EvalResult:
    """Two balanced labels; the first ``domain_hits`` items of each label answered right."""
    half = n_domain // 2
    golds = ["a"] * half + ["b"] * half
    preds = ["a" if i < domain_hits else "b" for i in range(half)] + [
        "b" if i < domain_hits else "a" for i in range(half)
    ]
    domain = _domain(golds, preds)
    mmlu = score([("s", c) for c in mmlu_correct], ids=[f"q{i}" for i in range(len(mmlu_correct))])
    if not items:
        domain.items = None
        mmlu.items = None
    return EvalResult(
        base_model=base_model,
        adapter=adapter,
        config={"x": 1},
        config_hash=config_hash,
        domain=domain,
        mmlu=mmlu,
    )


def _answers(n: int, correct: int, changed: int = 0) -> list[bool]:
    """``correct`` right answers; ``changed`` more flip from right to wrong and as many back."""
    out = [i < correct for i in range(n)]
    for i in range(changed):
        out[i] = False
        out[correct + i] = True
    return out


# --- the point rule (before intervals) ---------------------------------------------------------


def test_point_rule_promotes_when_domain_rises_and_mmlu_holds() -> None:
    decision = decide_gate(
        _result(10, _answers(1000, 400)), _result(45, _answers(1000, 395), adapter="x"), POINT
    )
    assert decision.promote and decision.verdict == "PROMOTE"
    assert decision.general_drop == pytest.approx(0.5)
    assert decision.domain_gain is not None and decision.domain_gain > 1.0


def test_point_rule_rejects_a_general_drop_over_budget() -> None:
    decision = decide_gate(_result(10, _answers(1000, 400)), _result(45, _answers(1000, 380)), POINT)
    assert not decision.promote and decision.verdict == "REJECT"
    assert "MMLU drop +2.00" in decision.summary()


def test_point_rule_rejects_without_domain_gain() -> None:
    decision = decide_gate(_result(10, _answers(100, 40)), _result(10, _answers(100, 40)), POINT)
    assert decision.verdict == "REJECT"


# --- the credible rule (default) ---------------------------------------------------------------


def test_credible_rule_promotes_a_clear_gain_with_mmlu_answers_unchanged() -> None:
    base = _result(10, _answers(2000, 800))
    tuned = _result(45, _answers(2000, 800, changed=20), adapter="x")
    decision = decide_gate(base, tuned)
    assert decision.verdict == "PROMOTE" and decision.promote
    drop = next(c for c in decision.checks if c.name == "general_drop")
    assert drop.paired and drop.interval is not None and drop.interval.high <= 1.0
    assert "credibly within budget" in drop.reason


def test_credible_rule_rejects_a_drop_credibly_over_budget() -> None:
    base = _result(10, _answers(2000, 800))
    tuned = _result(45, _answers(2000, 700), adapter="x")  # 100 answers lost: 5 points
    decision = decide_gate(base, tuned)
    assert decision.verdict == "REJECT"
    assert "credibly over budget" in decision.summary()


def test_credible_rule_is_inconclusive_on_a_small_mmlu_subset_and_says_how_many_items() -> None:
    # the demo's case: 40 MMLU questions, one of them lost (2.5 points) against a 1-point budget
    base = _result(10, _answers(40, 16))
    tuned = _result(45, _answers(40, 15), adapter="x")
    point = decide_gate(base, tuned, POINT)
    credible = decide_gate(base, tuned)
    assert point.verdict == "REJECT"  # a point estimate over budget, on one question
    assert credible.verdict == "INCONCLUSIVE" and not credible.promote
    assert credible.items_needed["mmlu"] > 40
    assert "too few items (40)" in credible.summary()


def test_credible_rule_rejects_a_domain_gain_credibly_below_the_requirement() -> None:
    base = _result(40, _answers(2000, 800))
    tuned = _result(10, _answers(2000, 800), adapter="x")
    assert decide_gate(base, tuned).verdict == "REJECT"


def test_credible_rule_without_per_item_outcomes_falls_back_to_unpaired_intervals() -> None:
    base = _result(10, _answers(2000, 800), items=False)
    tuned = _result(45, _answers(2000, 800, changed=20), adapter="x", items=False)
    decision = decide_gate(base, tuned)
    drop = next(c for c in decision.checks if c.name == "general_drop")
    assert not drop.paired and drop.interval is not None
    # the same data paired is decidable; unpaired it is not: independence overstates the noise
    assert decision.verdict == "INCONCLUSIVE"


def test_gate_refuses_results_from_different_eval_configs() -> None:
    decision = decide_gate(
        _result(10, _answers(100, 40)), _result(45, _answers(100, 40), config_hash="other")
    )
    assert not decision.promote and not decision.comparable and decision.verdict == "REJECT"


def test_gate_refuses_a_baseline_with_an_adapter_or_another_base_model() -> None:
    tuned = _result(45, _answers(100, 40), adapter="x")
    assert not decide_gate(_result(10, _answers(100, 40), adapter="old"), tuned).comparable
    assert not decide_gate(_result(10, _answers(100, 40), base_model="smollm2"), tuned).comparable


def test_gate_decision_is_reproducible() -> None:
    base, tuned = _result(10, _answers(300, 120)), _result(30, _answers(300, 118, changed=5), adapter="x")
    assert decide_gate(base, tuned) == decide_gate(base, tuned)


def test_compare_records_intervals_deltas_and_verdict() -> None:
    base = _result(10, _answers(400, 160))
    tuned = _result(45, _answers(400, 158, changed=4), adapter="x")
    comparison = compare(base, tuned, GatePolicy())
    assert (
        comparison.tuned["domain_f1_ci"][0]
        < comparison.tuned["domain_f1"]
        < comparison.tuned["domain_f1_ci"][1]
    )
    assert len(comparison.baseline["mmlu_accuracy_ci"]) == 2
    mmlu = comparison.delta_intervals["mmlu_points"]
    assert mmlu.paired and mmlu.low < comparison.deltas["mmlu_points"] < mmlu.high
    assert mmlu.p_value is not None and 0 < mmlu.p_value <= 1
    assert comparison.delta_intervals["domain_f1_points"].method == "paired-bootstrap"
    metrics = comparison.run_metrics(baseline_cached=False)
    assert metrics["verdict"] == comparison.decision.verdict
    orjson.dumps(metrics)  # the run record stores it as JSON


def test_eval_result_round_trips_through_json() -> None:
    result = _result(30, _answers(50, 20))
    assert EvalResult.from_json(result.to_json()) == result


def test_an_eval_json_of_schema_1_still_reads_and_compares() -> None:
    old = {
        "schema_version": "mixtune-eval-1",
        "base_model": "tiny",
        "adapter": None,
        "config": {},
        "config_hash": "h",
        "domain": {
            "task": "classification",
            "n": 20,
            "classification": {
                "n": 20,
                "accuracy": 0.3,
                "macro_f1": 0.3,
                "micro_f1": 0.3,
                "unknown_share": 0.0,
                "per_label_f1": {},
            },
        },
        "mmlu": {"n": 100, "shots": 0, "micro_accuracy": 0.5, "macro_accuracy": 0.5, "per_subject": {}},
        "general": {"n": 4, "loss": 1.5, "tokens": 80},
        "wall_time_s": 1.0,
        "created_at": "",
    }
    base = EvalResult.from_json(orjson.dumps(old))
    tuned = EvalResult.from_json(orjson.dumps({**old, "adapter": "a"}))
    assert (
        base.mmlu is not None
        and base.mmlu.items is None
        and base.general is not None
        and base.general.se is None
    )
    decision = compare(base, tuned, GatePolicy()).decision
    assert decision.verdict == "INCONCLUSIVE"  # no intervals to decide on
    assert "no interval" in decision.summary()
    assert compare(base, tuned, POINT).decision.verdict == "REJECT"  # no gain at all


def test_gate_refuses_results_on_other_eval_data_items_or_runtime() -> None:
    """Issue 16, defect 1: one config hash is not enough; the data, the items and the runtime
    both jobs recorded must agree too, and the reasons say which differ."""
    runtime = {"dtype": "float32", "device": "cpu", "torch": "2.13.0", "transformers": "5.0", "peft": "0.21"}
    base = _result(10, _answers(100, 40)).model_copy(update={"data_sha256": {"domain": "a" * 64}})
    base.runtime = dict(runtime)
    tuned = _result(45, _answers(100, 40), adapter="x").model_copy(
        update={"data_sha256": {"domain": "a" * 64}, "runtime": dict(runtime)}
    )
    assert decide_gate(base, tuned).comparable

    other_data = tuned.model_copy(update={"data_sha256": {"domain": "b" * 64}})
    (reason,) = decide_gate(base, other_data).reasons
    assert reason.startswith("not comparable: domain eval data differ")

    other_items = tuned.model_copy(deep=True)
    assert other_items.mmlu is not None and other_items.mmlu.items is not None
    other_items.mmlu.items.ids = [f"other{i}" for i in range(100)]
    (reason,) = decide_gate(base, other_items).reasons
    assert "MMLU items differ (100 vs 100 scored, 0 in common)" in reason

    other_runtime = tuned.model_copy(update={"runtime": {**runtime, "dtype": "bfloat16"}})
    decision = decide_gate(base, other_runtime)
    assert not decision.comparable and "dtype float32 vs bfloat16" in decision.reasons[0]


def test_the_baseline_key_holds_the_eval_datas_content_not_its_place() -> None:
    from mixtune.evaluation.comparability import BaselineKey
    from mixtune.training_config import EvalConfig

    def key(domain_data: str, sha: str, **config: object) -> str:
        setup = EvalConfig(base_model="tiny", domain_data=domain_data, output="o", **config)  # type: ignore[arg-type]
        return BaselineKey(
            base_model="tiny", scoring=setup.scoring_setup(), data_sha256={"domain": sha}, runtime={}
        ).digest()

    same = key("s3://w/datasets/a/eval.jsonl", "1" * 64)
    assert key("s3://w/datasets/b/eval.jsonl", "1" * 64) == same  # the same split, elsewhere
    assert key("s3://w/datasets/a/eval.jsonl", "2" * 64) != same  # another split
    assert key("s3://w/datasets/a/eval.jsonl", "1" * 64, mmlu_limit_per_subject=10) != same


def _with_loss(result: EvalResult, per_token: list[float]) -> EvalResult:
    """``result`` with a held-out general loss: one record of 10 tokens at each per-token loss."""
    sums = [10 * loss for loss in per_token]
    result.general = GeneralLoss(
        n=len(sums),
        loss=sum(sums) / (10 * len(sums)),
        tokens=10 * len(sums),
        items=LossItems(ids=[f"g{i}" for i in range(len(sums))], loss_sums=sums, tokens=[10] * len(sums)),
    )
    return result


def test_the_gate_caps_the_rise_of_the_held_out_general_loss_when_asked() -> None:
    base_losses = [0.3 + 0.05 * i for i in range(12)]
    base = _with_loss(_result(10, _answers(2000, 800)), base_losses)
    forgot = _with_loss(
        _result(45, _answers(2000, 800), adapter="x"),
        [loss + 1.5 + 0.02 * i for i, loss in enumerate(base_losses)],
    )
    kept = _with_loss(
        _result(45, _answers(2000, 800), adapter="x"),
        [loss + (0.02 if i % 2 else -0.01) for i, loss in enumerate(base_losses)],
    )
    capped = GatePolicy(max_general_loss_increase=0.25)

    assert decide_gate(base, forgot).verdict == "PROMOTE"  # no cap: the loss is not checked
    refused = decide_gate(base, forgot, capped)
    assert refused.verdict == "REJECT"
    check = next(c for c in refused.checks if c.name == "general_loss_increase")
    assert check.paired and check.outcome == "fail"
    assert check.interval is not None and check.interval.low > 0.25
    assert decide_gate(base, kept, capped).verdict == "PROMOTE"


def test_an_mmlu_drop_on_the_budget_up_to_rounding_is_said_to_sit_on_it() -> None:
    # 99 of 100 questions against 100 of 100 is a 1-point drop, in float 1.0000000000000002
    base = _result(10, [True] * 100)
    tuned = _result(45, [True] * 99 + [False], adapter="x")
    check = next(c for c in decide_gate(base, tuned).checks if c.name == "general_drop")
    assert check.outcome == "undecided" and check.items_needed is None
    assert "no eval size decides it" in check.reason
    interval = Interval(low=-2.0, high=4.0, confidence=0.95, method="x")
    assert items_to_decide(1.0 + 2e-16, interval, 1.0, 100) is None
    assert items_to_decide(2.0, interval, 1.0, 100) == 1600  # the interval's 4-point side to a 1-point gap
