"""The schedule function: re-run configured datasets; re-evaluate the promoted adapter."""

from __future__ import annotations

import json
from typing import Any

from mixtune.local.invoke import LambdaContext
from mixtune.sample_data import support_intents
from tests.support.events import s3_object_created


def _schedule(stack: Any, event: dict[str, Any]) -> dict[str, Any]:
    from mixtune.handlers import schedule

    return schedule.handler(event, LambdaContext(function_name="mixtune-schedule"))


def _scheduled_event(event_id: str, **detail: Any) -> dict[str, Any]:
    return {"id": event_id, "detail-type": "Scheduled Event", "source": "aws.events", "detail": detail}


def _put_dataset(stack: Any, key: str) -> str:
    body = "".join(json.dumps(r) + "\n" for r in support_intents(40, seed=5)).encode()
    stack.client("s3").put_object(Bucket="mixtune-raw", Key=key, Body=body)
    return f"s3://mixtune-raw/{key}"


def test_scheduled_rerun_starts_one_run_per_dataset_once_per_event(stack: Any, monkeypatch: Any) -> None:
    from mixtune.settings import get_settings

    uri = _put_dataset(stack, "incoming/nightly.jsonl")
    monkeypatch.setenv("MIXTUNE_SCHEDULED_DATASETS", uri)
    get_settings.cache_clear()
    first = _schedule(stack, _scheduled_event("evt-1"))
    again = _schedule(stack, _scheduled_event("evt-1"))  # EventBridge delivered it twice
    assert len(first["started"]) == 1 and again["started"] == []
    run_id = first["started"][0]["run_id"]
    (execution,) = stack.wait_for_executions(1)  # the prepare function ran (async invoke) and started it
    assert execution["name"] == run_id
    assert stack.wait_for_execution(execution["executionArn"])["status"] == "SUCCEEDED"
    assert stack.repo().get(run_id).trigger == "schedule"


def test_reevaluation_skips_training_and_scores_the_promoted_adapter(stack: Any) -> None:
    from mixtune.handlers import prepare

    uri = _put_dataset(stack, "incoming/support.jsonl")
    key = uri.split("/", 3)[3]
    event = s3_object_created("mixtune-raw", key, "e1")
    (result,) = prepare.handler(event, LambdaContext(function_name="mixtune-prepare"))["results"]
    assert stack.wait_for_execution(result["execution_arn"])["status"] == "SUCCEEDED"
    assert _schedule(stack, {"id": "nothing-yet", "action": "rerun", "datasets": []})["started"] == []

    reply = _schedule(stack, _scheduled_event("evt-2", action="reevaluate"))
    (started,) = reply["started"]
    assert started["reevaluates"] == result["run_id"]
    execution = stack.wait_for_execution(
        next(e["executionArn"] for e in stack.executions() if e["name"] == started["run_id"])
    )
    assert execution["status"] == "SUCCEEDED"
    states = stack.states_entered(execution["executionArn"])
    assert "Mix" not in states and "TrainLaunch" not in states and "UseCachedBaseline" in states
    run = stack.repo().get(started["run_id"])
    trained = stack.repo().get(result["run_id"])
    assert (
        run.status == "SUCCEEDED"
        and run.metrics["tuned"]["domain_f1"] == trained.metrics["tuned"]["domain_f1"]
    )
    assert stack.plan.submitted.count("train") == 1
