"""How runs end when something fails: every job stopped, the failure announced once with
FAILED, whatever found out (MarkFailed, NotifyFailure, the execution-status rule, the
on-failure destination of the asynchronous invocations)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mixtune.local.invoke import LambdaContext
from tests.workflow.test_workflow_pipeline import drop_dataset, run_to_end


def test_mark_failed_stops_every_job_of_the_run(stack: Any) -> None:
    stack.plan.fail_steps["train"] = "NCCL timeout"
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED" and run.status == "FAILED"
    assert set(run.lineage.job_ids) == {"smoke", "train"}
    assert set(stack.plan.cancelled) >= set(run.lineage.job_ids.values())


def test_when_one_evaluation_fails_the_other_evaluations_job_is_stopped(stack: Any) -> None:
    stack.plan.fail_steps["evaluate_tuned"] = "adapter does not load"
    stack.plan.never_ending_steps.add("evaluate_baseline")
    execution, run = run_to_end(stack)
    assert execution["status"] == "FAILED" and run.status == "FAILED"
    assert "adapter does not load" in run.failure.cause
    assert run.lineage.job_ids["evaluate_baseline"] in stack.plan.cancelled


def test_an_aborted_execution_ends_the_run_failed_stops_its_jobs_and_notifies_once(stack: Any) -> None:
    """Issue 13, item 6: an execution that is aborted (or times out) never reaches MarkFailed;
    the EventBridge rule on its status does the same work."""
    stack.plan.never_ending_steps.add("train")
    result = drop_dataset(stack)
    stack.wait_for_run(result["run_id"], lambda run: run.stage == "train")
    stack.client("stepfunctions").stop_execution(executionArn=result["execution_arn"], cause="operator")
    run = stack.wait_for_run(result["run_id"], lambda run: run.status == "FAILED")
    assert run.failure.error == "ExecutionAborted"
    (message,) = stack.messages(wait_s=30)  # announced after the jobs are stopped
    assert run.lineage.job_ids["train"] in stack.plan.cancelled
    assert message["MessageAttributes"]["status"]["Value"] == "FAILED"
    assert message["Message"]["failure"]["error"] == "ExecutionAborted"


def test_a_timed_out_execution_ends_the_run_failed(stack: Any) -> None:
    from mixtune.handlers import on_failure

    stack.plan.never_ending_steps.add("train")
    result = drop_dataset(stack)
    stack.wait_for_run(result["run_id"], lambda run: run.stage == "train")
    event = {
        "version": "0",
        "id": "315c1398-40ff-a850-213b-158f73e60175",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-11-29T12:00:00Z",
        "region": "us-east-1",
        "resources": [result["execution_arn"]],
        "detail": {
            "executionArn": result["execution_arn"],
            "stateMachineArn": stack.state_machine_arn,
            "name": result["run_id"],
            "status": "TIMED_OUT",
            "startDate": 1551225014968,
            "stopDate": 1551225017576,
            "input": "{}",
            "output": None,
        },
    }
    reply = on_failure.handler(event, LambdaContext(function_name="mixtune-on-failure"))
    assert reply["runs"] == [{"run_id": result["run_id"], "status": "FAILED", "ended_now": True}]
    run = stack.repo().get(result["run_id"])
    assert run.failure.error == "ExecutionTimedOut"
    assert run.lineage.job_ids["train"] in stack.plan.cancelled
    again = on_failure.handler(event, LambdaContext(function_name="mixtune-on-failure"))
    assert again["runs"][0]["ended_now"] is False  # delivered twice: announced once
    stack.client("stepfunctions").stop_execution(executionArn=result["execution_arn"])
    assert [m["Message"]["status"] for m in stack.messages()] == ["FAILED"]


def test_the_failure_notice_carries_failed_even_when_mark_failed_did_not_land(stack: Any) -> None:
    """Issue 15, defect 6: NotifyFailure after a MarkFailed that timed out sent `running`."""
    from mixtune.handlers import notify

    stack.plan.never_ending_steps.add("train")
    result = drop_dataset(stack)
    stack.wait_for_run(result["run_id"], lambda run: run.stage == "train")
    error = {"Error": "States.Timeout", "Cause": "MarkFailed timed out"}
    reply = notify.handler(
        {"run_id": result["run_id"], "event": "failed", "error": error},
        LambdaContext(function_name="mixtune-notify"),
    )
    assert reply["status"] == "FAILED"
    stack.client("stepfunctions").stop_execution(executionArn=result["execution_arn"])
    messages = stack.messages()
    assert messages and {m["Message"]["status"] for m in messages} == {"FAILED"}
    assert "running" not in messages[0]["Subject"]
    assert stack.repo().get(result["run_id"]).failure.error == "States.Timeout"


def test_a_prepare_that_fails_every_attempt_ends_its_run_failed_by_the_destination(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, defect 7: Lambda retries an async invocation twice, then calls the on-failure
    destination, which ends the run FAILED and announces it."""
    from mixtune.local import async_invoke
    from mixtune.runs import lifecycle
    from mixtune.runs.lifecycle import new_run, open_run
    from mixtune.runs.model import RunConfig

    attempts: list[str] = []

    def killed(run: Any) -> Any:
        attempts.append(run.run_id)
        raise RuntimeError("the worker was killed")

    monkeypatch.setattr(async_invoke, "RETRY_DELAYS_S", (0.0, 0.0))
    monkeypatch.setattr(lifecycle, "prepare_data", killed)
    run, _ = open_run(new_run("support-0123456789abcdef", "s3://mixtune-raw/x.jsonl", "api", RunConfig()))
    stack.client("lambda").invoke(
        FunctionName="mixtune-prepare",
        InvocationType="Event",
        Payload=json.dumps({"run_request": {"run_id": run.run_id}}).encode(),
    )
    failed = stack.wait_for_run(run.run_id, lambda run: run.status == "FAILED")
    assert attempts == [run.run_id] * 3
    assert failed.failure.error == "RuntimeError"
    assert "mixtune-prepare failed 3 attempt(s) (RetriesExhausted)" in failed.failure.cause
    assert "the worker was killed" in failed.failure.cause
    (message,) = stack.messages()
    assert message["Message"]["status"] == "FAILED"
