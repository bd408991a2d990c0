"""Issue 14 in the local cloud itself (moto server, Lambda handlers in warm worker processes
within their functions' limits, the real state machine, local-backend jobs as processes):
- a dataset over the (lowered) Lambda thresholds is prepared and mixed by jobs (`python -m
  mixtune.commands.prepare` / `mix`) and its run SUCCEEDED, the run saying where each step ran;
- a dataset whose preparation fails hard (the prepare function killed past its timeout, on
  every attempt) ends FAILED by the on-failure destination, with an SNS message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mixtune.local import async_invoke
from mixtune.local.cloud import LocalCloud
from mixtune.sample_data import support_intents
from mixtune.settings import Settings
from tests.e2e.test_local_pipeline_e2e import run_config

pytestmark = pytest.mark.timeout(900)

WAIT_S = 480  # a bound on waiting, not a speed check


def tiny_run_config() -> dict[str, Any]:
    """The e2e suite's tiny run, all domain data (no catalog in this cloud)."""
    return {**run_config(), "mix": {"domain_percent": 100, "seed": 0}}


def start_cloud(tmp_path: Path, **kwargs: Any) -> LocalCloud:
    settings = Settings(base_model="tiny", default_run_config=tiny_run_config(), **kwargs.pop("settings", {}))
    cloud = LocalCloud(port=0, state_dir=tmp_path / "state", settings=settings, schedule="", **kwargs)
    cloud.start()
    return cloud


def subscribe(cloud: LocalCloud) -> tuple[Any, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="run-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(TopicArn=cloud.resources.topic_arn, Protocol="sqs", Endpoint=arn)
    return sqs, url


def drop(cloud: LocalCloud, name: str, rows: int, seed: int = 1) -> None:
    body = "".join(json.dumps(row) + "\n" for row in support_intents(rows, seed=seed)).encode()
    cloud.client("s3").put_object(Bucket=cloud.resources.raw_bucket, Key=f"incoming/{name}.jsonl", Body=body)


def run_of(cloud: LocalCloud, dataset: str, done: Any) -> dict[str, Any]:
    """The dataset's run once ``done(run)`` holds, read from the runs table."""
    deadline = time.monotonic() + WAIT_S
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        items = cloud.client("dynamodb").scan(
            TableName=cloud.resources.runs_table,
            FilterExpression="dataset = :d AND kind = :run",
            ExpressionAttributeValues={":d": {"S": dataset}, ":run": {"S": "run"}},
        )["Items"]
        if items:
            from boto3.dynamodb.types import TypeDeserializer

            run = {k: TypeDeserializer().deserialize(v) for k, v in items[0].items()}
            if done(run):
                return run
        time.sleep(1)
    raise AssertionError(f"the run of {dataset} did not get there in {WAIT_S} s: {run}")


def messages(queue: tuple[Any, str], run_id: str, timeout_s: float = 30) -> list[dict[str, Any]]:
    sqs, url = queue
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while not found and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            payload = json.loads(json.loads(message["Body"])["Message"])
            if payload.get("run_id") == run_id:
                found.append(payload)
    return found


@pytest.fixture
def thresholds_lowered(tmp_path: Path, aws_env: None) -> Iterator[LocalCloud]:
    """Every dataset over 2 kB is prepared by a job, every mix over 2 kB mixed by one."""
    cloud = start_cloud(tmp_path, settings={"prepare_lambda_max_bytes": 2000, "mix_lambda_max_bytes": 2000})
    try:
        yield cloud
    finally:
        cloud.stop()


@pytest.mark.slow  # a whole tiny-model run (~1.5 min idle); tests/workflow/test_workflow_data_jobs.py has the fast one
def test_a_dataset_over_the_threshold_is_prepared_and_mixed_by_jobs_and_succeeds(
    thresholds_lowered: LocalCloud,
) -> None:
    cloud = thresholds_lowered
    queue = subscribe(cloud)
    drop(cloud, "large", rows=60)

    run = run_of(cloud, "large", lambda run: run["status"] in ("SUCCEEDED", "FAILED", "REJECTED"))

    assert run["status"] == "SUCCEEDED", run.get("failure") or run
    placement = run["lineage"]["placement"]
    assert (
        placement["prepare"]["runs_on"] == "job"
        and "over the Lambda threshold" in placement["prepare"]["reason"]
    )
    assert placement["mix"]["runs_on"] == "job" and "over the Lambda threshold" in placement["mix"]["reason"]
    assert {"prepare", "mix", "smoke", "train"} <= set(run["lineage"]["job_ids"])
    jobs = cloud.state_dir / "jobs"
    for kind in ("prepare", "mix"):  # the local backend ran them as processes of their own
        (folder,) = jobs.glob(f"*-{kind}")
        assert (folder / "exit_code").read_text().strip() == "0"
    (message,) = messages(queue, run["run_id"])
    assert message["status"] == "SUCCEEDED"


@pytest.fixture
def prepare_times_out(tmp_path: Path, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    """The prepare function may run 1 s (CDK context functionSizes, as `mixtune local up
    --function-sizes` passes it); Lambda's retries without their minutes."""
    monkeypatch.setattr(async_invoke, "RETRY_DELAYS_S", (0.0, 0.0))
    cloud = start_cloud(tmp_path, function_sizes={"prepare": {"timeout_s": 1}})
    try:
        yield cloud
    finally:
        cloud.stop()


def test_a_dataset_whose_preparation_fails_hard_ends_failed_with_a_message(
    prepare_times_out: LocalCloud,
) -> None:
    cloud = prepare_times_out
    queue = subscribe(cloud)
    drop(cloud, "slow", rows=20_000)  # ~2 MB: far more than a second of preparation

    run = run_of(cloud, "slow", lambda run: run["status"] != "PENDING")

    assert run["status"] == "FAILED"
    assert run["failure"]["error"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in run["failure"]["cause"]
    assert "mixtune-prepare failed 3 attempt(s)" in run["failure"]["cause"]
    (message,) = messages(queue, run["run_id"])
    assert message["status"] == "FAILED"
