"""The API against its own OpenAPI schema, fuzzed by schemathesis on the local cloud's API
(issue 15: 474 of 3,500 fuzzed requests answered 502). Every operation, a bounded number of
generated requests (valid and invalid): no 5xx, status codes, content types and bodies as the
schema documents them (400 ``{message, errors}`` for every bad request)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from mixtune.local.cloud import LocalCloud
from mixtune.settings import Settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state_dir: Path = tmp_path_factory.mktemp("fuzz-cloud")
    cloud = LocalCloud(
        lambda_mode="in_process",
        state_dir=state_dir,
        settings=Settings(base_model="tiny"),
        schedule="",
        write_state_file=False,
    )
    with cloud:
        cloud.client("s3").put_object(
            Bucket=cloud.resources.raw_bucket,
            Key="incoming/seen.jsonl",
            Body=b'{"text": "hi", "intent": "a"}\n',
        )
        yield cloud.api_endpoint


@pytest.fixture(scope="module")
def api_schema(local_api: str) -> schemathesis.BaseSchema:
    with urllib.request.urlopen(f"{local_api}/openapi.json", timeout=120) as reply:
        return schemathesis.openapi.from_dict(json.loads(reply.read()))


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Valid and invalid requests of each operation (a path parameter that takes any string has no
# invalid value to generate).
CASES = [
    ("POST /runs", POSITIVE),
    ("POST /runs", NEGATIVE),
    ("GET /runs/{run_id}", POSITIVE),
    ("GET /runs", POSITIVE),
    ("GET /runs", NEGATIVE),
    ("POST /validate", POSITIVE),
    ("POST /validate", NEGATIVE),
]


@pytest.mark.parametrize(("label", "mode"), CASES, ids=[f"{label} {mode.value}" for label, mode in CASES])
def test_every_operation_answers_as_its_schema_says(
    api_schema: schemathesis.BaseSchema, local_api: str, label: str, mode: GenerationMode
) -> None:
    operation = api_schema.find_operation_by_label(label)
    assert operation is not None, f"{label} is not in the schema"

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=local_api, checks=CHECKS, timeout=120)

    answers_as_documented()
