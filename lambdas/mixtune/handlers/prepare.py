"""Function ``prepare``: a dataset arrived (S3 notification) or a run was requested (API, schedule).

Prepares the data, records the run, and starts the pipeline only when the data passed
(:mod:`mixtune.runs.lifecycle`). Idempotent twice over: Powertools idempotency on each
request (bucket, key and version/etag), and a run id derived from the same triple, used as
the execution name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from pydantic import BaseModel

from mixtune.observability import lambda_entry
from mixtune.runs.lifecycle import PrepareRequest, PrepareResult, prepare_run
from mixtune.runs.triggers import requests_from_event
from mixtune.settings import get_settings

IDEMPOTENCY_DAYS = 7


class PrepareResults(BaseModel):
    results: list[PrepareResult]


def prepare_once(context: Any) -> Callable[..., PrepareResult]:
    """``prepare_run`` behind Powertools idempotency (DynamoDB), built per call so the table
    name follows the current settings."""
    config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_DAYS * 24 * 3600)
    if hasattr(context, "get_remaining_time_in_millis"):
        config.register_lambda_context(context)
    return idempotent_function(
        prepare_run,
        data_keyword_argument="request",
        persistence_store=DynamoDBPersistenceLayer(table_name=get_settings().idempotency_table),
        config=config,
        output_serializer=PydanticSerializer(PrepareResult),
    )


@lambda_entry("prepare")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    requests: list[PrepareRequest] = requests_from_event(event)
    run_once = prepare_once(context)
    return PrepareResults(results=[run_once(request=request) for request in requests]).model_dump(mode="json")
