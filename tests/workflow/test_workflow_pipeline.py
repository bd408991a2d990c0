"""The real ASL in moto's Step Functions interpreter, with the real handlers in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mixtune.local.invoke import LambdaContext
from tests.support.events import s3_object_created


def intents(n: int = 60, seed: int = 1) -> bytes:
    from mixtune.sample_data import support_intents

    return "".join(json.dumps(r) + "\n" for r in support_intents(n, seed=seed)).encode()


def drop_dataset(
    stack: Any, name: str = "support", rows: bytes | None = None, suffix: str = "jsonl"
) -> dict[str, Any]:
    """Put a dataset in the raw bucket and deliver its S3 event to the prepare handler."""
    from mixtune.handlers import prepare

    if rows is None:
        rows = intents()
    key = f"incoming/{name}.{suffix}"
    put = stack.client("s3").put_object(Bucket="mixtune-raw", Key=key, Body=rows)
    event = s3_object_created("mixtune-raw", key, put["ETag"].strip('"'))
    (result,) = prepare.handler(event, LambdaContext(function_name="mixtune-prepare"))["results"]
    return result


def run_to_end(stack: Any, name: str = "support", rows: bytes | None = None) -> tuple[dict[str, Any], Any]:
    result = drop_dataset(stack, name, rows)
    assert result["status"] == "PREPARED", result
    execution = stack.wait_for_execution(result["execution_arn"])
    return execution, stack.repo().get(result["run_id"])


def test_happy_path_succeeds_records_metrics_and_notifies(stack: Any) -> None:
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.status == "SUCCEEDED"
    assert run.metrics["deltas"]["domain_f1_points"] == pytest.approx(100.0)
    assert run.metrics["deltas"]["mmlu_points"] == pytest.approx(-0.3)
    assert run.gate["promote"] is True and run.gate["verdict"] == "PROMOTE"
    # every score with its interval, every delta with its paired interval
    for side in ("baseline", "tuned"):
        assert len(run.metrics[side]["domain_f1_ci"]) == 2 and len(run.metrics[side]["mmlu_accuracy_ci"]) == 2
    mmlu = run.metrics["delta_intervals"]["mmlu_points"]
    assert mmlu["paired"] and mmlu["low"] < -0.3 < mmlu["high"]
    assert run.lineage.manifest_uri and run.lineage.adapter_uri and run.lineage.input_sha256
    assert set(run.lineage.eval_uris) >= {"baseline", "tuned"}
    assert stack.plan.submitted.count("smoke") == 1 and stack.plan.submitted.count("train") == 1
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert message["Message"]["run_id"] == run.run_id
    assert message["Message"]["deltas"]["domain_f1_points"] == pytest.approx(100.0)
    assert "promoted" in message["Subject"]
    assert stack.repo().get_promoted("tiny").run_id == run.run_id


def test_training_failure_marks_the_run_failed_with_its_cause(stack: Any) -> None:
    stack.plan.fail_steps["train"] = "CUDA out of memory at step 3"
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED"
    assert run.status == "FAILED"
    assert run.failure.error == "JobFailedError"
    assert "CUDA out of memory at step 3" in run.failure.cause
    assert "evaluate_tuned" not in stack.plan.submitted
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert "JobFailedError" in message["Subject"]
    assert "CUDA out of memory" in message["Message"]["failure"]["cause"]


def test_transient_error_is_retried_then_the_run_succeeds(stack: Any) -> None:
    stack.plan.transient_status_errors = 1
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED"
    assert run.status == "SUCCEEDED"
    # four poll loops (smoke, train, baseline, tuned) each polled once, plus the retried call
    assert stack.plan.status_calls == 5


def test_a_poll_that_dies_or_runs_out_of_time_is_retried_not_fatal(stack: Any) -> None:
    """Issue 15, defect 4: polling is idempotent, so a poll that died (Runtime.ExitError), ran
    out of memory or time (Lambda.Unknown) or outlived its state (States.Timeout) is retried."""
    stack.plan.status_error_types = ["Runtime.ExitError", "Lambda.Unknown"]
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.status == "SUCCEEDED"


def test_gate_refuses_a_general_drop_over_budget(stack: Any) -> None:
    stack.plan.tuned = {"domain": 1.0, "mmlu": 0.40}
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED"  # the pipeline worked; the gate said no
    assert run.status == "REJECTED_BY_GATE"
    assert run.gate["promote"] is False
    assert run.gate["general_drop"] == pytest.approx(10.0)
    assert run.metrics["deltas"]["mmlu_points"] == pytest.approx(-10.0)
    assert "RejectedByGate" in stack.states_entered(execution["executionArn"])
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "REJECTED_BY_GATE"
    assert "MMLU drop 10.0 pts" in message["Subject"]
    assert stack.repo().get_promoted("tiny") is None


def test_cached_baseline_skips_the_baseline_evaluation(stack: Any) -> None:
    first, first_run = run_to_end(stack, "support")
    assert first["status"] == "SUCCEEDED"
    second, second_run = run_to_end(stack, "support-v2")
    assert second["status"] == "SUCCEEDED"
    assert stack.plan.submitted.count("evaluate_baseline") == 1
    assert stack.plan.submitted.count("evaluate_tuned") == 2
    states = stack.states_entered(second["executionArn"])
    assert "UseCachedBaseline" in states and "EvaluateBaselineLaunch" not in states
    assert second_run.metrics["baseline_cached"] is True
    assert second_run.metrics["baseline"] == first_run.metrics["baseline"]
    assert second_run.gate["comparable"] is True


def test_a_job_that_never_ends_fails_the_run_after_max_polls(stack: Any) -> None:
    stack.plan.never_ending_steps.add("smoke")
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED"
    assert run.status == "FAILED"
    assert run.failure.error == "PollLimitExceeded"
    assert "after 5 polls" in run.failure.cause
    assert "train" not in stack.plan.submitted


def _eval_json(uri: str) -> Any:
    from mixtune import storage
    from mixtune.evaluation import EvalResult

    return EvalResult.from_json(storage.read_bytes(uri))


def _eval_split_ids(run: Any) -> list[str]:
    from mixtune import layout, storage
    from mixtune.records import ConversationRecord
    from mixtune_training.evaluate import item_id

    lines = storage.read_bytes(layout.eval_split(run.lineage.prepared_uri)).splitlines()
    return [item_id(ConversationRecord.model_validate_json(line)) for line in lines if line.strip()]


def test_a_run_on_another_dataset_is_compared_with_a_baseline_scored_on_its_own_eval_items(
    stack: Any,
) -> None:
    """Issue 16, defect 1: the baseline cache was keyed on the eval config before its data was
    filled in, so a run on another dataset reused the first run's baseline (scored on the first
    run's eval split) and the gate refused it. Now the key holds the eval data's content hash."""
    first, first_run = run_to_end(stack, "support", intents(60, seed=1))
    second, second_run = run_to_end(stack, "billing", intents(60, seed=2))
    assert first["status"] == second["status"] == "SUCCEEDED"
    assert second_run.status == "SUCCEEDED", second_run.gate
    assert second_run.gate["comparable"] is True and second_run.metrics["baseline_cached"] is False
    assert "EvaluateBaselineLaunch" in stack.states_entered(second["executionArn"])
    assert stack.plan.submitted.count("evaluate_baseline") == 2

    baseline = _eval_json(second_run.lineage.eval_uris["baseline"])
    tuned = _eval_json(second_run.lineage.eval_uris["tuned"])
    own_items = _eval_split_ids(second_run)
    assert baseline.adapter is None and baseline.domain.items.ids == tuned.domain.items.ids == own_items
    assert own_items != _eval_split_ids(first_run)
    # the eval data's hash the key was built from is the one the jobs read
    assert baseline.data_sha256["domain"] == second_run.lineage.output_sha256["eval.jsonl"]
    assert baseline.mmlu.items.ids == tuned.mmlu.items.ids


def test_an_eval_set_too_small_for_the_budget_ends_inconclusive_recorded_and_notified(
    stack: Any, monkeypatch: Any
) -> None:
    """40 MMLU questions, one answer lost (a 2.5-point drop): its interval spans the 1-point
    budget, so the gate cannot decide. The run ends INCONCLUSIVE (not promoted, not refused),
    says how many questions would decide, and was warned of it before training."""
    from mixtune.observability import metrics
    from mixtune.settings import get_settings

    small = {"evaluation": {"mmlu_subjects": ["marketing"], "mmlu_limit_per_subject": 40}}
    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", json.dumps(small))
    get_settings.cache_clear()
    counted: list[str] = []
    monkeypatch.setattr(metrics, "add_metric", lambda name, **_: counted.append(name))
    stack.plan.tuned = {"domain": 1.0, "mmlu": 0.475}
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED"  # the pipeline worked; the gate could not decide
    assert run.status == "INCONCLUSIVE"
    assert run.gate["verdict"] == "INCONCLUSIVE" and run.gate["promote"] is False
    needed = run.gate["items_needed"]["mmlu"]
    assert needed > 40
    states = stack.states_entered(execution["executionArn"])
    assert "NotifyInconclusive" in states and "Inconclusive" in states and "Promoted" not in states
    assert any("MMLU" in warning for warning in run.sizing["warnings"])  # said before training
    assert run.metrics["deltas"]["mmlu_points"] == pytest.approx(-2.5)
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "INCONCLUSIVE"
    assert "inconclusive" in message["Subject"] and f"MMLU: ~{needed:,} items needed" in message["Subject"]
    assert message["Message"]["items_needed"] == {"mmlu": needed}
    assert message["Message"]["verdict"] == "INCONCLUSIVE"
    assert stack.repo().get_promoted("tiny") is None
    assert "RunsInconclusive" in counted
    assert not {"RunsPromoted", "RunsRejectedByGate"} & set(counted)
    # `mixtune runs show` and the report say so, with the scores' intervals
    shown = _runs_show(stack, run)
    assert f"{run.run_id}" in shown and "INCONCLUSIVE" in shown
    assert "MMLU accuracy" in shown and "0.500 [" in shown and "-2.5 pts [" in shown
    assert f"items that would decide: MMLU: ~{needed:,} items" in shown
    assert "warning:" in shown  # the sizing, as recorded before training
    summary = json.loads(
        stack.client("s3")
        .get_object(Bucket="mixtune-work", Key=f"reports/{run.run_id}/summary.json")["Body"]
        .read()
    )
    assert summary["verdict"]["headline"].startswith("Inconclusive")


def _runs_show(stack: Any, run: Any) -> str:
    """What `mixtune runs show` prints for the run, from what GET /runs/{id} answers."""
    from rich.console import Console

    from mixtune.api.models import RunDetail
    from mixtune.commands.runs import print_run

    console = Console(record=True, width=200)
    print_run(RunDetail.of(stack.repo().get(run.run_id), None).model_dump(mode="json"), console)
    return console.export_text()
