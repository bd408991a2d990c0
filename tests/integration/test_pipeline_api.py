"""The REST API handler (Powertools resolver) against moto: good and bad requests."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from mixtune.local.invoke import LambdaContext

RAW = "mixtune-raw"


@pytest.fixture
def api(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Raw bucket, runs table, and a prepare function whose invokes are recorded, not run."""
    import boto3
    from moto import mock_aws

    from mixtune.local.invoke import lambda_runtime
    from mixtune.runs import table_definition
    from mixtune.settings import get_settings

    invoked: list[Any] = []

    def record_invoke(handler: str, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
        invoked.append(event)
        return "{}", False, ""

    for key, value in {
        "MIXTUNE_RAW_BUCKET": RAW,
        "MIXTUNE_RUNS_TABLE": "runs",
        "MIXTUNE_PREPARE_FUNCTION_NAME": "mixtune-prepare",
        "MIXTUNE_POLL_SECONDS": "1",
        "POWERTOOLS_METRICS_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    with mock_aws(), lambda_runtime(record_invoke):
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=RAW)
        s3.put_object(Bucket=RAW, Key="incoming/support.jsonl", Body=b'{"text": "hi", "intent": "greet"}\n')
        boto3.client("dynamodb").create_table(**table_definition("runs"))
        role = boto3.client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("x.py", "")
        boto3.client("lambda").create_function(
            FunctionName="mixtune-prepare",
            Runtime="python3.11",
            Role=role,
            Handler="mixtune.handlers.prepare.handler",
            Code={"ZipFile": buffer.getvalue()},
        )
        yield {"invoked": invoked}
    get_settings.cache_clear()


def call(method: str, path: str, body: Any = None, query: dict[str, str] | None = None) -> tuple[int, Any]:
    from mixtune.handlers import api

    event = {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "headers": {"content-type": "application/json"},
        "queryStringParameters": query,
        "pathParameters": None,
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
        "isBase64Encoded": False,
        "requestContext": {"requestId": "req-1", "stage": "prod"},
    }
    reply = api.handler(event, LambdaContext(function_name="mixtune-api"))
    return reply["statusCode"], json.loads(reply["body"]) if reply.get("body") else None


def test_post_runs_accepts_creates_a_pending_run_and_hands_it_to_prepare(api: dict[str, Any]) -> None:
    status, body = call("POST", "/runs", {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl"})
    assert status == 202, body
    assert body["status"] == "PENDING" and body["dataset"] == "support"
    assert api["invoked"] == [{"run_request": {"run_id": body["run_id"]}}]
    status, run = call("GET", f"/runs/{body['run_id']}")
    assert status == 200
    assert run["trigger"] == "api" and run["config"]["poll_seconds"] == 1
    assert run["lineage"]["source_uri"] == f"s3://{RAW}/incoming/support.jsonl"


def test_post_runs_takes_a_training_config(api: dict[str, Any]) -> None:
    config = {"train": {"learning_rate": 0.0002, "lora_r": 8}, "mix": {"domain_percent": 50}}
    status, body = call(
        "POST", "/runs", {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl", "config": config}
    )
    assert status == 202
    _, run = call("GET", f"/runs/{body['run_id']}")
    assert run["config"]["train"]["lora_r"] == 8 and run["config"]["mix"] == {"domain_percent": 50}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("{not json", "not valid JSON"),
        ({"dataset_uri": f"s3://{RAW}/incoming/support.jsonl", "colour": "red"}, "unknown field 'colour'"),
        (
            {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl", "config": {"node_count": "many"}},
            "node_count",
        ),
        (
            {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl", "config": {"train": {"lora_rank": 8}}},
            "lora_rank",
        ),
        ({"dataset_uri": 42}, "dataset_uri"),
        ({"dataset_uri": "/home/me/data.jsonl"}, "must be an s3:// URI"),
        ({"dataset_uri": "s3://somebody-elses-bucket/data.jsonl"}, "inside the raw bucket"),
        ({"dataset_uri": f"s3://{RAW}/incoming/"}, "not a bucket or a folder"),
        ({}, "missing field 'dataset_uri'"),
        ({"dataset_uri": f"s3://{RAW}/incoming/absent.jsonl"}, "no object at"),
    ],
)
def test_bad_run_requests_get_400_with_a_message_and_start_nothing(
    api: dict[str, Any], body: Any, expected: str
) -> None:
    status, reply = call("POST", "/runs", body)
    assert status == 400
    assert expected in reply["message"]
    assert api["invoked"] == []
    _, listed = call("GET", "/runs", query={"status": "PENDING"})
    assert listed["runs"] == []


def test_unknown_run_is_404(api: dict[str, Any]) -> None:
    status, body = call("GET", "/runs/nope")
    assert status == 404
    assert "nope" in body["message"]


def test_list_runs_by_dataset_and_status(api: dict[str, Any]) -> None:
    ids = [
        call("POST", "/runs", {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl"})[1]["run_id"]
        for _ in range(2)
    ]
    status, body = call("GET", "/runs", query={"dataset": "support"})
    assert status == 200 and sorted(r["run_id"] for r in body["runs"]) == sorted(ids)
    _, body = call("GET", "/runs", query={"dataset": "support", "status": "SUCCEEDED"})
    assert body["runs"] == []
    status, body = call("GET", "/runs", query={"status": "NOT_A_STATUS"})
    assert status == 400
    status, body = call("GET", "/runs")
    assert status == 400 and "dataset" in body["message"]


def test_validate_inline_payload_returns_the_report(api: dict[str, Any]) -> None:
    from mixtune.sample_data import support_intents

    status, report = call("POST", "/validate", {"records": support_intents(30, seed=4)})
    assert status == 200, report
    assert report["accepted"] is True
    assert report["counts"]["input"] == 30
    status, report = call("POST", "/validate", {"records": [{"text": "", "intent": ""}] * 5})
    assert status == 200 and report["accepted"] is False


def test_validate_an_s3_object_and_refuse_two_sources(api: dict[str, Any]) -> None:
    status, report = call("POST", "/validate", {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl"})
    assert status == 200 and report["counts"]["input"] == 1
    status, body = call(
        "POST", "/validate", {"dataset_uri": f"s3://{RAW}/incoming/support.jsonl", "records": []}
    )
    assert status == 400 and "exactly one" in body["message"]
    status, body = call("POST", "/validate", {"dataset_uri": "s3://elsewhere/x.jsonl"})
    assert status == 400


def test_openapi_schema_lists_the_routes() -> None:
    from mixtune.handlers.api import app

    schema = json.loads(app.get_openapi_json_schema(title="mixtune", version="1"))
    assert {"/runs", "/runs/{run_id}", "/validate"} <= set(schema["paths"])
    assert "RunRequest" in schema["components"]["schemas"]
