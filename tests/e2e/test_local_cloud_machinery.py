"""The local cloud's own machinery, with stand-in handlers: Lambda runtime, S3 notification,
Step Functions to Lambda, Catch on a handler error, SNS to SQS, the API proxy, the scheduler."""

from __future__ import annotations

import json
import textwrap
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mixtune.functions import FunctionDef
from mixtune.local import deploy
from mixtune.local.cloud import LocalCloud
from mixtune.local.eventbridge import Scheduler
from mixtune.local.state import read_state

HANDLERS = """
import json, os, boto3

def prepare(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    boto3.client("stepfunctions").start_execution(
        stateMachineArn=os.environ["MIXTUNE_STATE_MACHINE_ARN"], name="run-1", input=json.dumps({"key": key}))
    return {}

def echo(event, context):
    return {"echo": event, "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
            "endpoint": os.environ["AWS_ENDPOINT_URL"], "bucket": os.environ["MIXTUNE_RAW_BUCKET"]}

def boom(event, context):
    raise ValueError("boom")

def api(event, context):
    return {"statusCode": 201, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"method": event["httpMethod"], "path": event["path"],
                                "query": event["queryStringParameters"], "body": event["body"]})}

def schedule(event, context):
    boto3.client("sns").publish(TopicArn=os.environ["MIXTUNE_TOPIC_ARN"],
                                Message=json.dumps({"fired_by": event["detail-type"]}))
    return {}
"""

ASL = {
    "StartAt": "Mix",
    "States": {
        "Mix": {"Type": "Task", "Resource": "${MixFunctionArn}", "ResultPath": "$.mix", "Next": "Fail"},
        "Fail": {
            "Type": "Task",
            "Resource": "${NotifyFunctionArn}",
            "Catch": [{"ErrorEquals": ["ValueError"], "ResultPath": "$.error", "Next": "Publish"}],
            "Next": "Publish",
        },
        "Publish": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {"TopicArn": "${TopicArn}", "Message.$": "States.JsonToString($)"},
            "End": True,
        },
    },
}


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws_env: None) -> Any:
    (tmp_path / "fake_handlers.py").write_text(textwrap.dedent(HANDLERS))
    (tmp_path / "asl.json").write_text(json.dumps(ASL))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the warm workers import from here
    monkeypatch.setattr(deploy, "ASL_PATH", tmp_path / "asl.json")
    monkeypatch.setattr(
        deploy,
        "FUNCTIONS",
        (
            FunctionDef("prepare", "fake_handlers.prepare", 60, 256, False),
            FunctionDef("mix", "fake_handlers.echo", 60, 256, True),
            FunctionDef("notify", "fake_handlers.boom", 60, 256, True),
            FunctionDef("api", "fake_handlers.api", 60, 256, False),
            FunctionDef("schedule", "fake_handlers.schedule", 60, 256, False),
        ),
    )
    local = LocalCloud(port=0, state_dir=tmp_path / "state", schedule="rate(1 hour)")
    try:
        local.start()
        yield local
    finally:
        local.stop()


def _subscribe_queue(cloud: LocalCloud) -> tuple[Any, str]:
    sqs = cloud.client("sqs")
    url = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    cloud.client("sns").subscribe(TopicArn=cloud.resources.topic_arn, Protocol="sqs", Endpoint=arn)
    return sqs, url


def _messages(sqs: Any, url: str, want: int, timeout_s: float = 20) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < want and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []):
            found.append(json.loads(json.loads(message["Body"])["Message"]))
    return found


def test_upload_runs_the_state_machine_through_lambda_handlers_to_sns(cloud: LocalCloud) -> None:
    sqs, url = _subscribe_queue(cloud)
    cloud.client("s3").put_object(Bucket=cloud.resources.raw_bucket, Key="incoming/a.jsonl", Body=b"{}")
    cloud.client("s3").put_object(Bucket=cloud.resources.raw_bucket, Key="elsewhere/b.jsonl", Body=b"{}")

    [message] = _messages(sqs, url, want=1)

    assert message["key"] == "incoming%2Fa.jsonl"
    assert message["mix"]["function"] == "mixtune-mix"
    assert message["mix"]["endpoint"] == cloud.endpoint
    assert message["mix"]["bucket"] == cloud.resources.raw_bucket
    assert message["error"]["Error"] == "ValueError"
    executions = cloud.client("stepfunctions").list_executions(
        stateMachineArn=cloud.resources.state_machine_arn
    )
    assert [e["name"] for e in executions["executions"]] == ["run-1"]


def test_api_proxy_turns_http_into_proxy_events(cloud: LocalCloud) -> None:
    request = urllib.request.Request(f"{cloud.api_endpoint}/runs?dataset=d", data=b'{"a": 1}', method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
        body = json.loads(response.read())
    assert body == {"method": "POST", "path": "/runs", "query": {"dataset": "d"}, "body": '{"a": 1}'}


def test_scheduler_fires_a_due_schedule_rule_into_its_lambda(cloud: LocalCloud) -> None:
    sqs, url = _subscribe_queue(cloud)
    scheduler = Scheduler(deploy.ACCOUNT_ID, "us-east-1")

    assert scheduler.tick(datetime.now(UTC)) == []
    assert scheduler.tick(datetime.now(UTC) + timedelta(hours=1, seconds=1)) == ["mixtune-schedule"]
    assert _messages(sqs, url, want=1) == [{"fired_by": "Scheduled Event"}]


def test_state_file_names_the_endpoints_and_is_removed_on_stop(tmp_path: Path, cloud: LocalCloud) -> None:
    state = read_state(tmp_path / "state")
    assert state is not None and state.endpoint == cloud.endpoint and state.api_endpoint == cloud.api_endpoint
    assert state.resources.functions["prepare"].endswith(":function:mixtune-prepare")
    workers = list(cloud._pool.pids) if cloud._pool else []
    cloud.stop()
    assert read_state(tmp_path / "state") is None
    import psutil

    assert not [pid for pid in workers if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


@pytest.fixture
def stale_job(tmp_path: Path) -> Path:
    """A finished job folder left by an earlier cloud in the same state folder."""
    folder = tmp_path / "state" / "jobs" / "support-0123-train"
    folder.mkdir(parents=True)
    (folder / "exit_code").write_text("0\n")
    return folder


def test_start_clears_the_jobs_of_an_earlier_cloud(stale_job: Path, cloud: LocalCloud) -> None:
    # Requested before `cloud`, so the folder exists when the cloud starts.
    assert not stale_job.exists()


def test_stop_stops_the_jobs_of_workers_that_have_retired(tmp_path: Path, cloud: LocalCloud) -> None:
    """A job outlives the Lambda worker that launched it (workers retire when idle): stopping
    the cloud must stop it too, though it is no longer any process's child here."""
    import subprocess
    import sys

    import psutil

    launch = (  # the job's own output goes elsewhere: the launcher's pipe closes when it exits
        "import subprocess, sys; print(subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
        " start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid)"
    )
    pid = int(
        subprocess.run([sys.executable, "-c", launch], capture_output=True, text=True, check=True).stdout
    )
    folder = tmp_path / "state" / "jobs" / "support-0123-train"
    folder.mkdir(parents=True)
    (folder / "pid").write_text(f"{pid}\n")
    assert psutil.pid_exists(pid)

    cloud.stop()

    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert (folder / "pid").is_file()  # stopped, not removed: its log stays readable
