"""The whole service in the local cloud (`mixtune local up` in its own process, stopped by PID):
data in S3, the Lambdas, the state machine, tiny-model training and evaluation on the local
backend, the runs table, SNS to SQS, and the API."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from mixtune.local.aws import CREDENTIALS, REGION, local_client
from mixtune.local.process import MIXTUNE_COMMAND, LocalCloudProcess
from mixtune.local.state import LocalState
from mixtune.records import ConversationRecord
from mixtune.sample_data import support_intents

pytestmark = pytest.mark.timeout(900)

RUN_TIMEOUT_S = 480  # a wait bound, not a speed check: a loaded 2-core machine is slow

GENERAL = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Name a primary colour.", "Red is a primary colour."),
    ("What is 2 + 3?", "2 + 3 = 5."),
    ("Give a synonym of happy.", "Glad is a synonym of happy."),
    ("How many days are in a week?", "A week has seven days."),
    ("What do bees make?", "Bees make honey."),
    ("Which planet is closest to the sun?", "Mercury is closest to the sun."),
    ("What is water made of?", "Water is made of hydrogen and oxygen."),
]


def run_config() -> dict[str, Any]:
    """A run small enough for the tiny model to go through every state in seconds."""
    return {
        "base_model": "tiny",
        "backend": "local",
        "prepare": {"eval_share": 0.2, "seed": 0},
        "mix": {"domain_percent": 75, "categories": {"general": 100}, "seed": 0},
        "train": {"max_steps": 3, "per_device_batch_size": 4, "max_length": 96, "logging_steps": 1},
        "evaluation": {
            "domain_limit": 6,
            "max_new_tokens": 4,
            "mmlu": False,
            "batch_size": 8,
            "max_length": 96,
        },
        # A random tiny model gains nothing: this gate checks the plumbing, not the model.
        "gate": {"min_domain_gain": -100.0, "require_mmlu": False},
        "smoke_steps": 1,
        "poll_seconds": 1,
        "max_polls": 500,
        "max_runtime_s": 500,
    }


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalState]:
    root = tmp_path_factory.mktemp("local-cloud")
    env = {
        **CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": None,
        "MIXTUNE_BASE_MODEL": "tiny",
        "MIXTUNE_POLL_SECONDS": "1",
        "MIXTUNE_CATALOG_URI": "s3://mixtune-work/general/catalog.json",
        "MIXTUNE_LOCAL_WORKDIR": str(root / "jobs"),
        # What a dropped file's run gets (a run started by POST /runs carries its own).
        "MIXTUNE_DEFAULT_RUN_CONFIG": json.dumps(run_config()),
    }
    process = LocalCloudProcess(root / "state", env=env)
    try:
        state = process.start()
        _seed_general_data(state)
        yield state
        # `mixtune local down` stops it by the PID in its state file, workers and jobs included.
        status = _mixtune("local", "status", "--state-dir", state.state_dir)
        assert status.returncode == 0 and state.endpoint in status.stdout
        workers = psutil.Process(state.pid).children(recursive=True)
        down = _mixtune("local", "down", "--state-dir", state.state_dir)
        assert down.returncode == 0, down.stderr
        assert process.proc is not None and process.proc.wait(timeout=30) == 0
        assert not [p.pid for p in workers if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert _mixtune("local", "status", "--state-dir", state.state_dir).returncode == 1
    finally:
        process.stop()  # whatever the test did: SIGTERM by PID, leftovers killed


def client(state: LocalState, service: str) -> Any:
    return local_client(service, state.endpoint, state.region)


def _seed_general_data(state: LocalState) -> None:
    s3 = client(state, "s3")
    lines = "".join(
        ConversationRecord.from_turns([("user", q), ("assistant", a)]).to_json_line() + "\n"
        for q, a in GENERAL
    )
    s3.put_object(Bucket=state.resources.work_bucket, Key="general/general.jsonl", Body=lines.encode())
    catalog = {
        "sources": [{"name": "general", "category": "general", "uri": "general.jsonl", "format": "prepared"}]
    }
    s3.put_object(
        Bucket=state.resources.work_bucket, Key="general/catalog.json", Body=json.dumps(catalog).encode()
    )


@pytest.fixture(scope="module")
def queue(cloud: LocalState) -> tuple[Any, str]:
    sqs = client(cloud, "sqs")
    url = sqs.create_queue(QueueName="run-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client(cloud, "sns").subscribe(TopicArn=cloud.resources.topic_arn, Protocol="sqs", Endpoint=arn)
    return sqs, url


def upload(state: LocalState, tmp_path: Path, key: str, rows: list[dict[str, Any]] | str) -> str:
    path = tmp_path / Path(key).name
    path.write_text(rows if isinstance(rows, str) else "".join(json.dumps(r) + "\n" for r in rows))
    client(state, "s3").upload_file(str(path), state.resources.raw_bucket, key)
    return f"s3://{state.resources.raw_bucket}/{key}"


def api(state: LocalState, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{state.api_endpoint}{path}", data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def wait_for_run(state: LocalState, run_id: str | None = None, dataset: str | None = None) -> dict[str, Any]:
    """The run once it is terminal (and its execution, if any, has ended)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    sfn = client(state, "stepfunctions")
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        if run_id is None:
            _, body = api(state, "GET", f"/runs?dataset={dataset}")
            runs = body.get("runs", []) if isinstance(body, dict) else []
            run = runs[0] if runs else {}
        else:
            _, run = api(state, "GET", f"/runs/{run_id}")
        if run.get("status") in ("SUCCEEDED", "REJECTED", "REJECTED_BY_GATE", "FAILED"):
            arn = (run.get("lineage") or {}).get("execution_arn")
            if arn is None or sfn.describe_execution(executionArn=arn)["status"] != "RUNNING":
                return run
        time.sleep(1)
    raise AssertionError(f"run {run_id or dataset} not finished in {RUN_TIMEOUT_S} s: {run}")


def messages_for(queue: tuple[Any, str], run_id: str, timeout_s: float = 20) -> list[dict[str, Any]]:
    sqs, url = queue
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while not found and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            payload = json.loads(body["Message"])
            if payload.get("run_id") == run_id:
                found.append({"subject": body.get("Subject"), **payload})
            else:
                # another test's message: leave it for that test
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return found


def report_of(state: LocalState, run: dict[str, Any]) -> dict[str, Any]:
    uri = run["lineage"]["report_uri"]
    bucket, _, key = uri[5:].partition("/")
    return json.loads(client(state, "s3").get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture(scope="module")
def uploads(
    cloud: LocalState, queue: tuple[Any, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Both uploads at once (one training run keeps the suite short), each dropped under
    incoming/ (the S3 notification path, runs configured by the service's default run
    config): a dataset some of whose rows carry template collisions, and an invalid file."""
    folder = tmp_path_factory.mktemp("uploads")
    rows = support_intents(48, seed=1, collision_share=0.25)
    upload(cloud, folder, "incoming/support.jsonl", rows)
    upload(cloud, folder, "incoming/broken.jsonl", '{"text": "no label here"\nnot json at all\n')
    run_id = wait_for_run_id(cloud, "support")
    return {"run_id": run_id, "rows": rows}


def wait_for_run_id(state: LocalState, dataset: str) -> str:
    """The id of the run a dropped file started (the prepare function creates it)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _, body = api(state, "GET", f"/runs?dataset={dataset}")
        runs = body.get("runs", []) if isinstance(body, dict) else []
        if runs:
            return str(runs[0]["run_id"])
        time.sleep(0.5)
    raise AssertionError(f"no run for dataset {dataset!r} after 120 s")


def test_uploaded_dataset_runs_to_succeeded_with_metrics_sns_and_api(
    cloud: LocalState, queue: tuple[Any, str], uploads: dict[str, Any]
) -> None:
    run_id = uploads["run_id"]

    run = wait_for_run(cloud, run_id)

    assert run["status"] == "SUCCEEDED", run.get("failure") or run
    [item] = client(cloud, "dynamodb").scan(
        TableName=cloud.resources.runs_table,
        FilterExpression="run_id = :id AND kind = :run",
        ExpressionAttributeValues={":id": {"S": run_id}, ":run": {"S": "run"}},
    )["Items"]
    assert item["status"]["S"] == "SUCCEEDED"
    metrics = item["metrics"]["M"]
    assert {"baseline", "tuned", "deltas"} <= set(metrics)
    assert "domain_f1" in metrics["tuned"]["M"]
    [message] = messages_for(queue, run_id)
    assert message["status"] == "SUCCEEDED"
    assert message["report"]["uri"] == f"s3://{cloud.resources.work_bucket}/reports/{run_id}/report.html"
    status, body = api(cloud, "GET", f"/runs/{run_id}")
    assert status == 200 and body["run_id"] == run_id and body["status"] == "SUCCEEDED"
    assert body["lineage"]["adapter_uri"].startswith(f"s3://{cloud.resources.work_bucket}/")


def test_invalid_file_is_rejected_and_a_file_with_collisions_is_sanitized_and_runs_through(
    cloud: LocalState, queue: tuple[Any, str], uploads: dict[str, Any]
) -> None:
    rejected = wait_for_run(cloud, dataset="broken")

    assert rejected["status"] == "REJECTED"
    assert rejected["lineage"].get("execution_arn") is None
    assert rejected["summary"].startswith("REJECTED")
    report = report_of(cloud, rejected)
    assert report["accepted"] is False
    assert report["counts"]["rejected"] == report["counts"]["input"] == 2
    assert report["errors"]
    [notice] = messages_for(queue, rejected["run_id"])
    assert notice["status"] == "REJECTED"

    run = wait_for_run(cloud, uploads["run_id"])
    assert run["status"] == "SUCCEEDED", run.get("failure") or run
    report = report_of(cloud, run)
    assert report["counts"]["sanitized"] > 0
    assert report["counts"]["input"] == len(uploads["rows"])


def _mixtune(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MIXTUNE_COMMAND, *args], capture_output=True, text=True, timeout=60, check=False)


def test_runs_commands_read_the_local_api(cloud: LocalState, uploads: dict[str, Any]) -> None:
    run_id = uploads["run_id"]
    wait_for_run(cloud, run_id)

    shown = _mixtune("runs", "show", run_id, "--json", "--endpoint", cloud.api_endpoint)
    readable = _mixtune("runs", "show", run_id, "--endpoint", cloud.api_endpoint)
    listed = _mixtune("runs", "list", "--state-dir", cloud.state_dir, "--dataset", "support", "--json")
    missing = _mixtune("runs", "show", "no-such-run", "--endpoint", cloud.api_endpoint)

    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["run_id"] == run_id
    assert readable.returncode == 0, readable.stderr
    assert run_id in readable.stdout and "gate: PROMOTE" in readable.stdout
    # support intents are labelled: scored by label (prepare's label set), the random model's answers name none
    assert "domain macro-F1" in readable.stdout and "0.000 [0.000, 0.000]" in readable.stdout, readable.stdout
    assert listed.returncode == 0, listed.stderr
    assert [run["run_id"] for run in json.loads(listed.stdout)["runs"]] == [run_id]
    assert missing.returncode == 2 and "no run" in missing.stderr


def test_the_report_link_opens_on_this_machine_and_runs_show_open_writes_the_page(
    cloud: LocalState, uploads: dict[str, Any], tmp_path: Path
) -> None:
    from tests.support.html import parse_html

    run_id = uploads["run_id"]
    wait_for_run(cloud, run_id)
    _, run = api(cloud, "GET", f"/runs/{run_id}")
    link = run["report"]

    assert link["uri"] == run["lineage"]["run_report_uri"]
    assert link["url"].startswith(f"{cloud.endpoint}/")  # moto's S3 on 127.0.0.1
    with urllib.request.urlopen(link["url"], timeout=30) as response:  # as a browser: no credentials
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        page = parse_html(response.read().decode())
    assert page.tags["table"] >= 5 and page.tags["svg"] >= 3
    assert run_id in page.text

    opened = _mixtune(
        "runs", "show", run_id, "--open", "--out", str(tmp_path), "--endpoint", cloud.api_endpoint
    )

    assert opened.returncode == 0, opened.stderr
    path = Path(opened.stdout.strip())
    assert path == (tmp_path / run_id / "report.html").resolve()
    assert parse_html(path.read_text()).tags["table"] == page.tags["table"]
