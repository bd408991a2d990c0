"""The real ASL in moto's Step Functions interpreter, with the real handlers in-process."""

from __future__ import annotations

from typing import Any

import pytest

from mixtune.local.invoke import LambdaContext
from tests.support.events import s3_object_created


def drop_dataset(
    stack: Any, name: str = "support", rows: bytes | None = None, suffix: str = "jsonl"
) -> dict[str, Any]:
    """Put a dataset in the raw bucket and deliver its S3 event to the prepare handler."""
    from mixtune.handlers import prepare
    from mixtune.sample_data import support_intents

    if rows is None:
        import json

        rows = "".join(json.dumps(r) + "\n" for r in support_intents(60, seed=1)).encode()
    key = f"incoming/{name}.{suffix}"
    put = stack.client("s3").put_object(Bucket="mixtune-raw", Key=key, Body=rows)
    event = s3_object_created("mixtune-raw", key, put["ETag"].strip('"'))
    (result,) = prepare.handler(event, LambdaContext(function_name="mixtune-prepare"))["results"]
    return result


def run_to_end(stack: Any, name: str = "support") -> tuple[dict[str, Any], Any]:
    result = drop_dataset(stack, name)
    assert result["status"] == "PREPARED", result
    execution = stack.wait_for_execution(result["execution_arn"])
    return execution, stack.repo().get(result["run_id"])


def test_happy_path_succeeds_records_metrics_and_notifies(stack: Any) -> None:
    execution, run = run_to_end(stack)
    assert execution["status"] == "SUCCEEDED", execution
    assert run.status == "SUCCEEDED"
    assert run.metrics["deltas"]["domain_f1_points"] == pytest.approx(50.0)
    assert run.metrics["deltas"]["mmlu_points"] == pytest.approx(-0.3)
    assert run.gate["promote"] is True
    assert run.lineage.manifest_uri and run.lineage.adapter_uri and run.lineage.input_sha256
    assert set(run.lineage.eval_uris) >= {"baseline", "tuned"}
    assert stack.plan.submitted.count("smoke") == 1 and stack.plan.submitted.count("train") == 1
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "SUCCEEDED"
    assert message["Message"]["run_id"] == run.run_id
    assert message["Message"]["deltas"]["domain_f1_points"] == pytest.approx(50.0)
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
    stack.plan.tuned = {"f1": 0.9, "mmlu": 0.40}
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


def test_a_job_that_never_ends_fails_the_run_after_max_polls(stack: Any) -> None:
    stack.plan.never_ending_steps.add("smoke")
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED"
    assert run.status == "FAILED"
    assert run.failure.error == "PollLimitExceeded"
    assert "after 5 polls" in run.failure.cause
    assert "train" not in stack.plan.submitted
