"""Function ``api``: the REST API (API Gateway REST, Powertools resolver with validation):
``POST /runs``, ``GET /runs/{id}``, ``GET /runs``, ``POST /validate``, ``GET /openapi.json``.
Every bad request gets 400 ``{message, errors}`` (mixtune.api.errors), an unknown run 404;
what each route does is in mixtune.api.runs."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query

from mixtune.api import runs
from mixtune.api.errors import refusal, register_error_handlers, unreadable_body
from mixtune.api.models import RunAccepted, RunDetail, RunList, RunRequest, ValidateRequest
from mixtune.api.schema import openapi_document
from mixtune.observability import lambda_entry
from mixtune.runs.model import RunStatus

app = APIGatewayRestResolver(enable_validation=True)
register_error_handlers(app)


@app.post("/runs", status_code=202, summary="Start a run", responses={400: {"description": "bad request"}})
def create_run(request: RunRequest) -> Response[RunAccepted]:
    accepted = runs.accept_run(request)
    return Response(202, content_types.APPLICATION_JSON, accepted, headers={"Location": accepted.location})


@app.get("/runs/<run_id>", summary="One run", responses={404: {"description": "unknown run"}})
def get_run(run_id: str) -> RunDetail:
    return runs.run_detail(run_id)


@app.get("/runs", summary="Runs of a dataset or in a status, newest first")
def list_runs(
    dataset: Annotated[str | None, Query(description="dataset name", max_length=200)] = None,
    status: Annotated[RunStatus | None, Query(description="run status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunList:
    return runs.list_runs(dataset, status, limit)


@app.post("/validate", summary="Dry-run data preparation; returns the report")
def validate(request: ValidateRequest) -> dict[str, Any]:
    return runs.validate(request)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    return openapi_document(app.get_openapi_json_schema(title="mixtune", version="1"))


@lambda_entry("api")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reason = unreadable_body(event)
    return refusal(reason) if reason else app.resolve(event, context)
