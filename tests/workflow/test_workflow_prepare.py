"""The prepare function end to end: idempotent on the S3 object, rejection reported on SNS."""

from __future__ import annotations

import json
from typing import Any

from mixtune.sample_data import support_intents
from tests.support.events import eventbridge_object_created, s3_object_created


def _event(key: str, etag: str, shape: str = "notification") -> dict[str, Any]:
    if shape == "eventbridge":
        return eventbridge_object_created("mixtune-raw", key, etag)
    return s3_object_created("mixtune-raw", key, etag)


def _invoke_prepare(stack: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Through the Lambda API, as S3 would (moto runs the handler in this process)."""
    reply = stack.client("lambda").invoke(FunctionName="mixtune-prepare", Payload=json.dumps(event).encode())
    payload = json.loads(reply["Payload"].read())
    assert "FunctionError" not in reply, payload
    return payload


def _put(stack: Any, key: str, rows: list[dict[str, Any]]) -> str:
    body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    return stack.client("s3").put_object(Bucket="mixtune-raw", Key=key, Body=body)["ETag"].strip('"')


def test_same_event_three_times_gives_one_run_and_one_execution(stack: Any) -> None:
    etag = _put(stack, "incoming/support.jsonl", support_intents(40, seed=2))
    results = [
        _invoke_prepare(stack, _event("incoming/support.jsonl", etag, shape))
        for shape in ("notification", "notification", "eventbridge")
    ]
    run_ids = {r["results"][0]["run_id"] for r in results}
    assert len(run_ids) == 1
    (run_id,) = run_ids
    executions = stack.executions()
    assert [e["name"] for e in executions] == [run_id]
    stack.wait_for_execution(executions[0]["executionArn"])
    assert [r.run_id for r in stack.repo().list_by_dataset("support")] == [run_id]


def test_a_new_version_of_the_object_is_a_new_run(stack: Any) -> None:
    first = _put(stack, "incoming/support.jsonl", support_intents(40, seed=2))
    second = _put(stack, "incoming/support.jsonl", support_intents(40, seed=3))
    ids = {
        _invoke_prepare(stack, _event("incoming/support.jsonl", etag))["results"][0]["run_id"]
        for etag in (first, second)
    }
    assert len(ids) == 2
    for execution in stack.executions():
        stack.wait_for_execution(execution["executionArn"])


def test_bad_data_is_rejected_reported_and_starts_nothing(stack: Any) -> None:
    rows = [{"text": "", "intent": ""} for _ in range(30)]
    etag = _put(stack, "incoming/broken.jsonl", rows)
    (result,) = _invoke_prepare(stack, _event("incoming/broken.jsonl", etag))["results"]
    assert result["status"] == "REJECTED"
    assert stack.executions() == []
    run = stack.repo().get(result["run_id"])
    assert run.status == "REJECTED" and run.summary
    (message,) = stack.messages()
    assert message["MessageAttributes"]["status"]["Value"] == "REJECTED"
    assert message["Message"]["summary"] == run.summary


def test_unreadable_file_is_rejected_with_a_message_naming_it(stack: Any) -> None:
    stack.client("s3").put_object(Bucket="mixtune-raw", Key="incoming/garbage.jsonl", Body=b"{not json\n")
    (result,) = _invoke_prepare(stack, _event("incoming/garbage.jsonl", "e1"))["results"]
    assert result["status"] == "REJECTED"
    assert stack.executions() == []
    assert result["summary"]


def test_a_second_pass_over_an_empty_file_ends_quietly_and_it_is_announced_once(stack: Any) -> None:
    """Issue 15, defect 9: two passes over one empty file (a duplicate event that got past
    idempotency while the first pass was slow) ended in IllegalTransition REJECTED -> REJECTED."""
    from mixtune.runs import lifecycle

    stack.client("s3").put_object(Bucket="mixtune-raw", Key="incoming/empty.jsonl", Body=b"")
    request = lifecycle.PrepareRequest.for_object("mixtune-raw", "incoming/empty.jsonl", "e-empty")
    stale = lifecycle.new_run(request.run_id, request.source_uri, "s3", lifecycle.RunConfig(), "empty")
    lifecycle.open_run(stale)  # both passes read it PENDING
    first = lifecycle.prepare_data(stale)
    second = lifecycle.prepare_data(stale)
    assert first.status == second.status == "REJECTED"
    assert "empty" in (second.summary or "")
    assert [m["Message"]["status"] for m in stack.messages()] == ["REJECTED"]


def test_a_rejection_whose_pass_died_before_announcing_is_announced_by_the_next(stack: Any) -> None:
    from mixtune.runs import lifecycle
    from mixtune.runs.model import RunStatus

    stack.client("s3").put_object(Bucket="mixtune-raw", Key="incoming/empty.jsonl", Body=b"")
    request = lifecycle.PrepareRequest.for_object("mixtune-raw", "incoming/empty.jsonl", "e-died")
    run, _ = lifecycle.open_run(
        lifecycle.new_run(request.run_id, request.source_uri, "s3", lifecycle.RunConfig(), "empty")
    )
    stack.repo().transition(run.run_id, RunStatus.REJECTED, stage="prepare", summary="the file is empty")
    (result,) = _invoke_prepare(stack, _event("incoming/empty.jsonl", "e-died"))["results"]  # the retry
    assert result["status"] == "REJECTED"
    (message,) = stack.messages()
    assert message["Message"]["status"] == "REJECTED"
    _invoke_prepare(stack, _event("incoming/empty.jsonl", "e-died"))  # and again: nothing new
    assert stack.messages(wait_s=1) == []


def test_a_one_record_dataset_is_rejected_before_mix_with_the_minimum_in_its_report(stack: Any) -> None:
    """Issue 15, defect 8: one record passed prepare (1 eval, 0 train) and failed at Mix."""
    from mixtune import storage

    etag = _put(stack, "incoming/tiny.jsonl", [{"text": "my card is lost", "intent": "lost_card"}])
    (result,) = _invoke_prepare(stack, _event("incoming/tiny.jsonl", etag))["results"]
    assert result["status"] == "REJECTED"
    assert "too small to split" in result["summary"]
    assert stack.executions() == []
    run = stack.repo().get(result["run_id"])
    report = json.loads(storage.read_bytes(run.lineage.report_uri))
    assert report["accepted"] is False
    assert any("too small to split" in reason for reason in report["reasons"])
