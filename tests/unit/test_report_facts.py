"""The report's facts: scores and their intervals wherever the evaluation records them, the
states and their job seconds, the failing step, the data accounting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mixtune.report.summary import as_interval, find_interval, score_rows, summarize
from mixtune.report.timeline import JOB_PHASES, phases_from_history
from mixtune.runs import RunStatus
from mixtune.statemachine import load_definition
from tests.support import report as sample

NOW = sample.T0 + timedelta(seconds=700)


def test_phases_group_launch_wait_poll_states_and_skip_choices() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(kind: str, name: str, second: int) -> dict[str, object]:
        key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
        return {"type": kind, "timestamp": t0 + timedelta(seconds=second), key: {"name": name}}

    history = [
        event("TaskStateEntered", "Mix", 0),
        event("TaskStateExited", "Mix", 2),
        event("TaskStateEntered", "TrainLaunch", 2),
        event("TaskStateExited", "TrainLaunch", 3),
        event("WaitStateEntered", "TrainWait", 3),
        event("WaitStateExited", "TrainWait", 4),
        event("TaskStateEntered", "TrainPoll", 4),
        event("TaskStateExited", "TrainPoll", 9),
        event("ChoiceStateEntered", "TrainDone", 9),
        event("ChoiceStateExited", "TrainDone", 9),
        event("TaskStateEntered", "Record", 9),
    ]

    phases = phases_from_history(history)

    assert [p.name for p in phases] == ["Mix", "Train", "Record"]
    assert [p.seconds(t0 + timedelta(seconds=10)) for p in phases] == [2.0, 7.0, 1.0]
    assert [p.status for p in phases] == ["done", "done", "running"]


def test_a_task_retried_to_success_did_not_fail_but_a_caught_failure_did() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    history = [
        {"type": "TaskStateEntered", "timestamp": t0, "stateEnteredEventDetails": {"name": "TrainPoll"}},
        {
            "type": "LambdaFunctionFailed",
            "timestamp": t0,
            "lambdaFunctionFailedEventDetails": {"error": "TransientError"},
        },
        {"type": "LambdaFunctionSucceeded", "timestamp": t0},
        {"type": "TaskStateExited", "timestamp": t0, "stateExitedEventDetails": {"name": "TrainPoll"}},
        {"type": "TaskStateEntered", "timestamp": t0, "stateEnteredEventDetails": {"name": "Record"}},
        {
            "type": "TaskFailed",
            "timestamp": t0,
            "taskFailedEventDetails": {"error": "KeyError", "cause": "x"},
        },
        {"type": "TaskStateExited", "timestamp": t0, "stateExitedEventDetails": {"name": "Record"}},
    ]

    train, record = phases_from_history(history)

    assert (train.status, train.error) == ("done", None)
    assert (record.status, record.error) == ("failed", "KeyError")


def test_every_job_phase_is_a_loop_of_the_state_machine() -> None:
    definition = load_definition()
    for phase in JOB_PHASES.values():
        assert f'"{phase}Launch"' in definition and f'"{phase}Poll"' in definition


@pytest.mark.parametrize(
    "recorded",
    [
        {"domain_f1": 0.7, "domain_f1_ci": [0.6, 0.8]},
        {"domain_f1": 0.7, "domain_f1_interval": {"low": 0.6, "high": 0.8}},
        {"domain_f1": {"value": 0.7, "lower": 0.6, "upper": 0.8}},
        {"domain_f1": 0.7, "domain_f1_low": 0.6, "domain_f1_high": 0.8},
        {"domain_f1": 0.7, "intervals": {"domain_f1": {"lo": 0.6, "hi": 0.8}}},
        {"domain_f1": 0.7, "ci": {"domain_f1": [0.6, 0.8]}},
    ],
    ids=["suffix-list", "suffix-mapping", "value-mapping", "low-high-keys", "intervals-group", "ci-group"],
)
def test_score_intervals_are_read_in_any_shape_the_evaluation_records(recorded: dict[str, object]) -> None:
    metrics = {"baseline": {"domain_f1": 0.2}, "tuned": recorded, "deltas": {"domain_f1_points": 50.0}}

    (row,) = score_rows(metrics, {})

    assert row.tuned == pytest.approx(0.7)
    assert row.tuned_interval is not None
    assert (row.tuned_interval.low, row.tuned_interval.high) == (0.6, 0.8)
    assert row.base_interval is None


def test_a_change_whose_interval_holds_zero_is_no_change() -> None:
    metrics = {
        "baseline": {"mmlu_accuracy": 0.50},
        "tuned": {"mmlu_accuracy": 0.47},
        "deltas": {"mmlu_points": -3.0, "mmlu_points_ci": [-9.0, 2.5]},
    }
    (row,) = score_rows(metrics, {})
    assert row.delta_interval is not None and row.tone == "neutral"

    metrics["deltas"]["mmlu_points_ci"] = [-9.0, -0.5]
    (row,) = score_rows(metrics, {})
    assert row.tone == "bad"


def test_intervals_reach_the_pages() -> None:
    from mixtune.report.publish import render_report

    inputs = sample.inputs()
    metrics = dict(inputs.run.metrics or {})
    metrics["tuned"] = {**metrics["tuned"], "domain_f1_ci": [0.70, 0.79]}
    metrics["deltas"] = {**metrics["deltas"], "domain_f1_points_ci": [55.0, 72.5]}
    run = inputs.run.model_copy(update={"metrics": metrics})

    files = render_report(inputs.model_copy(update={"run": run}), now=NOW).files

    assert (
        "| domain macro-F1 | 0.100 | 0.743 [0.700, 0.790] | +64.3 pts [+55.0, +72.5] | 45 |"
        in files["report.md"]
    )
    assert "95% intervals" in files["report.html"]


def test_not_an_interval() -> None:
    assert as_interval([1, 2, 3]) is None and as_interval({"low": 1}) is None and as_interval("x") is None
    assert as_interval([True, 1]) is None
    assert find_interval({"domain_f1": 0.5}, "domain_f1") is None


def test_scores_come_from_the_eval_files_when_the_run_recorded_none() -> None:
    inputs = sample.inputs()

    rows = score_rows(None, inputs.evals)

    assert [r.name for r in rows] == [
        "domain macro-F1",
        "domain accuracy",
        "MMLU accuracy",
        "general loss (held-out)",
    ]
    assert rows[0].delta == pytest.approx(64.3)
    assert rows[3].delta == pytest.approx(-0.163) and rows[3].tone == "good"  # a lower loss is better
    assert rows[2].tone == "bad"


def test_states_carry_their_job_seconds_and_a_cached_baseline_has_none() -> None:
    summary = summarize(sample.inputs(), NOW)
    jobs = {s.name: s.job_seconds for s in summary.states}
    assert jobs["Train"] == pytest.approx(262.5) and jobs["EvaluateBaseline"] == pytest.approx(160.0)
    assert jobs["Mix"] is None
    assert summary.job_seconds == pytest.approx(21.0 + 262.5 + 160.0 + 175.0)
    evaluate = {s.name: s.start_s for s in summary.states}
    assert evaluate["EvaluateBaseline"] == evaluate["EvaluateTuned"]  # in parallel

    inputs = sample.inputs()
    cached = inputs.run.model_copy(
        update={"metrics": {**(inputs.run.metrics or {}), "baseline_cached": True}}
    )
    summary = summarize(inputs.model_copy(update={"run": cached}), NOW)
    assert summary.baseline_cached is True
    assert {s.name: s.job_seconds for s in summary.states}["EvaluateBaseline"] is None


def test_a_failed_run_names_the_step_it_failed_in_else_its_stage() -> None:
    summary = summarize(sample.inputs(RunStatus.FAILED), NOW)
    assert summary.failure is not None
    assert (summary.failure.step, summary.failure.error) == ("Train", "JobFailedError")
    assert "CUDA out of memory" in summary.verdict.reasons[0]

    no_history = sample.inputs(RunStatus.FAILED).model_copy(update={"history": []})
    summary = summarize(no_history, NOW)
    assert summary.failure is not None and summary.failure.step == "train"


def test_data_accounting_keeps_counts_rules_and_line_numbers_never_more_than_the_first_rejections() -> None:
    inputs = sample.inputs()
    report = dict(inputs.prepare_report or {})
    report["errors"] = [{"line": i, "rule": "empty_text", "message": "x" * 500} for i in range(1, 30)]
    report["rule_counts"] = {f"rule_{i}": i for i in range(1, 9)}

    data = summarize(inputs.model_copy(update={"prepare_report": report}), NOW).data

    assert data is not None
    assert [e.line for e in data.first_rejections] == list(range(1, 11))
    assert all(len(e.message) == 200 for e in data.first_rejections)
    assert [r.rule for r in data.top_rules] == ["rule_8", "rule_7", "rule_6", "rule_5", "rule_4"]
    assert data.counts == {
        "input": 320,
        "kept": 309,
        "sanitized": 10,
        "rejected": 11,
        "train": 264,
        "eval": 45,
    }


def test_what_the_lineage_points_at_but_is_not_there_is_named() -> None:
    from mixtune.report.inputs import gather_inputs

    texts = {
        sample.lineage().report_uri: '{"counts": {"input": 3}}',
        sample.lineage().manifest_uri: "not json",
    }
    inputs = gather_inputs(sample.run(), read_text=texts.get)

    assert inputs.prepare_report == {"counts": {"input": 3}}
    assert inputs.manifest is None
    assert sample.lineage().manifest_uri in inputs.missing
    assert f"{sample.WORK}/runs/{sample.RUN_ID}/train/metrics.json" in inputs.missing
    assert f"{sample.WORK}/runs/{sample.RUN_ID}/evaluate_tuned/eval.json" in inputs.missing
