"""The REST API handler (Powertools resolver) against moto: good and bad requests."""

from __future__ import annotations

import base64
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
        "MIXTUNE_MAX_RUNTIME_S": "300",
        "MIXTUNE_PLATFORM": "local",
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


def call(
    method: str, path: str, body: Any = None, query: dict[str, str] | None = None, base64_body: bool = False
) -> tuple[int, Any]:
    from mixtune.handlers import api

    event = {
        "httpMethod": method,
        "path": path,
        "resource": path,
        "headers": {"content-type": "application/json"},
        "queryStringParameters": query,
        "pathParameters": None,
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
        "isBase64Encoded": base64_body,
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


def test_openapi_schema_lists_the_routes_and_documents_400_error_bodies(api: dict[str, Any]) -> None:
    status, schema = call("GET", "/openapi.json")
    assert status == 200
    assert {"/runs", "/runs/{run_id}", "/validate"} <= set(schema["paths"])
    assert "RunRequest" in schema["components"]["schemas"]
    error = {"$ref": "#/components/schemas/ErrorBody"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            assert "422" not in operation["responses"]
            assert operation["responses"]["400"]["content"]["application/json"]["schema"] == error
    assert (
        schema["paths"]["/runs/{run_id}"]["get"]["responses"]["404"]["content"]["application/json"]["schema"]
        == error
    )
    assert set(schema["components"]["schemas"]["ErrorBody"]["properties"]) == {"message", "errors"}


DATASET = f"s3://{RAW}/incoming/support.jsonl"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # issue 15, defect 1: prepare options were checked only when prepare ran
        ({"prepare": {"zzz": 1}}, "config.prepare.zzz: unknown field"),
        ({"prepare": {"eval_share": 5}}, "config.prepare.eval_share"),
        # defect 2: mix, gate, backend, base model, bounds
        ({"mix": {"domain_percent": "abc"}}, "config.mix.domain_percent"),
        ({"mix": {"nonsense": 1}}, "config.mix.nonsense: unknown field"),
        ({"gate": {"max_general_drop": -1}}, "config.gate.max_general_drop"),
        ({"gate": {"typo": 1}}, "config.gate.typo: unknown field"),
        ({"backend": "nosuch"}, "unknown backend 'nosuch'"),
        ({"base_model": "../../../../etc/passwd"}, "is not a model id"),
        ({"train": {"max_steps": 10**12}}, "config.train.max_steps"),
        ({"train": {"max_steps": 2_000_000}}, "config.train.max_steps: 2e+06 is outside"),
        ({"train": {"output": "s3://elsewhere/"}}, "set by the pipeline"),
        # issue 13, item 7: the poll loops
        ({"poll_seconds": 0, "max_polls": 5, "max_runtime_s": 600}, "shorter than the job budget"),
        ({"max_polls": 5000}, "history events"),
    ],
)
def test_every_section_of_the_run_config_is_checked_at_the_door(
    api: dict[str, Any], config: dict[str, Any], expected: str
) -> None:
    status, reply = call("POST", "/runs", {"dataset_uri": DATASET, "config": config})
    assert status == 400, reply
    assert any(expected in line for line in reply["errors"]), reply
    assert api["invoked"] == []
    _, listed = call("GET", "/runs", query={"dataset": "support"})
    assert listed["runs"] == []


@pytest.mark.parametrize(
    ("body", "base64_body", "expected"),
    [
        # issue 15, defect 3: each of these answered 502
        (base64.b64encode(b'{"dataset_uri": "\xff\xfe"}' + bytes([0xFF, 0xFE])).decode(), True, "not UTF-8"),
        (
            '{"dataset_uri": "' + DATASET + '", "config": {"train": {"learning_rate": Infinity}}}',
            False,
            "finite",
        ),
        (
            '{"dataset_uri": "' + DATASET + '", "config": {"train": {"weight_decay": -1e308}}}',
            False,
            "out of range",
        ),
        ("[" * 5000 + "]" * 5000, False, "nests deeper"),
    ],
)
def test_unreadable_or_absurd_bodies_get_400_not_502(
    api: dict[str, Any], body: str, base64_body: bool, expected: str
) -> None:
    for path in ("/runs", "/validate"):
        status, reply = call("POST", path, body, base64_body=base64_body)
        if path == "/validate" and expected in ("finite", "out of range"):
            assert status == 400  # not a /validate body: refused for its own reasons
            continue
        assert status == 400, (path, reply)
        assert any(expected in line for line in reply["errors"]), reply


def test_a_dataset_too_small_for_both_splits_is_not_accepted(api: dict[str, Any]) -> None:
    """Issue 15, defect 8: one record passed prepare (1 eval, 0 train) and failed at Mix."""
    status, report = call("POST", "/validate", {"records": [{"text": "hello", "intent": "greet"}]})
    assert status == 200, report
    assert report["accepted"] is False
    assert report["counts"]["kept"] == 1
    assert any("too small to split" in reason for reason in report["reasons"])


def test_validate_refuses_unknown_options_with_400(api: dict[str, Any]) -> None:
    status, reply = call(
        "POST", "/validate", {"records": [{"text": "a", "intent": "b"}], "options": {"zzz": 1}}
    )
    assert status == 400, reply
    assert reply["errors"] == ["options.zzz: unknown field"]


def test_api_runs_take_the_service_default_config_under_the_request(
    api: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 15, defect 10: the request's fields over MIXTUNE_DEFAULT_RUN_CONFIG over code defaults."""
    from mixtune.settings import get_settings

    default = {"train": {"num_epochs": 3, "max_length": 256}, "evaluation": {"mmlu_limit_per_subject": 2}}
    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", json.dumps(default))
    get_settings.cache_clear()
    _, plain = call("POST", "/runs", {"dataset_uri": DATASET})
    _, run = call("GET", f"/runs/{plain['run_id']}")
    assert run["config"]["train"]["num_epochs"] == 3
    assert run["config"]["evaluation"]["mmlu_limit_per_subject"] == 2
    _, mine = call("POST", "/runs", {"dataset_uri": DATASET, "config": {"train": {"max_length": 512}}})
    _, run = call("GET", f"/runs/{mine['run_id']}")
    assert run["config"]["train"]["max_length"] == 512  # the request wins
    assert run["config"]["train"]["num_epochs"] == 3  # the service default fills the rest
    assert run["config"]["train"]["lora_r"] == 16  # the code's default fills what neither sets


@pytest.mark.parametrize(
    ("limits", "config", "expected"),
    [
        (
            {"MIXTUNE_ALLOWED_INSTANCE_TYPES": '["ml.g5.xlarge"]'},
            {"instance_type": "ml.p5.48xlarge"},
            "allowed_instance_types",
        ),
        ({"MIXTUNE_MAX_NODE_COUNT": "2"}, {"node_count": 8}, "max_node_count"),
        (
            {"MIXTUNE_ALLOWED_BASE_MODELS": '["tiny"]'},
            {"base_model": "meta-llama/Llama-3.1-70B"},
            "allowed_base_models",
        ),
        ({"MIXTUNE_ALLOWED_BACKENDS": '["sagemaker"]'}, {"backend": "hyperpod"}, "allowed_backends"),
        ({"MIXTUNE_PLATFORM": "aws", "MIXTUNE_POLL_SECONDS": "60"}, {"backend": "local"}, "refused on AWS"),
        ({"MIXTUNE_PLATFORM": "aws"}, {"backend": "sagemaker", "poll_seconds": 1}, "minimum of 10 s on AWS"),
    ],
)
def test_the_cost_guard_refuses_what_the_deployment_does_not_allow(
    api: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    limits: dict[str, str],
    config: dict[str, Any],
    expected: str,
) -> None:
    """Issue 13, item 9: deploy-time allow-lists and caps, enforced at the door with a 400 naming the limit."""
    from mixtune.settings import get_settings

    for key, value in limits.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    status, reply = call("POST", "/runs", {"dataset_uri": DATASET, "config": config})
    assert status == 400, reply
    assert any(expected in line for line in reply["errors"]), reply
    assert api["invoked"] == []
