"""Function ``api``: the REST API (API Gateway REST, Powertools resolver with validation):
``POST /runs``, ``GET /runs/{id}``, ``GET /runs``, ``POST /validate``, ``GET /openapi.json``.
Every bad request gets 400 ``{message, errors}`` (mixtune.api.errors), an unknown run 404."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.openapi.params import Query

from mixtune import storage
from mixtune.api.errors import refusal, register_error_handlers, unreadable_body
from mixtune.api.models import RUN_ID_PATTERN, RunAccepted, RunList, RunRequest, ValidateRequest
from mixtune.api.schema import openapi_document
from mixtune.observability import lambda_entry
from mixtune.runs.lifecycle import request_run
from mixtune.runs.model import Run, RunStatus
from mixtune.runs.repository import RunsRepository

app = APIGatewayRestResolver(enable_validation=True)


register_error_handlers(app)


@app.post("/runs", status_code=202, summary="Start a run", responses={400: {"description": "bad request"}})
def create_run(request: RunRequest) -> Response[RunAccepted]:
    if not storage.exists(request.dataset_uri):
        raise BadRequestError(f"no object at {request.dataset_uri}")
    requested = request.config.model_dump(exclude_unset=True)
    accepted = RunAccepted.of(request_run(request.dataset_uri, request.dataset, requested))
    return Response(202, content_types.APPLICATION_JSON, accepted, headers={"Location": accepted.location})


@app.get("/runs/<run_id>", summary="One run", responses={404: {"description": "unknown run"}})
def get_run(run_id: str) -> Run:
    run = RunsRepository.from_settings().find(run_id) if RUN_ID_PATTERN.match(run_id) else None
    if run is None:
        raise NotFoundError(f"no run {run_id[:100]!r}")
    return run


@app.get("/runs", summary="Runs of a dataset or in a status, newest first")
def list_runs(
    dataset: Annotated[str | None, Query(description="dataset name", max_length=200)] = None,
    status: Annotated[RunStatus | None, Query(description="run status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunList:
    repo = RunsRepository.from_settings()
    if dataset:
        return RunList(runs=repo.list_by_dataset(dataset, status, limit))
    if status:
        return RunList(runs=repo.list_by_status(status, limit))
    raise BadRequestError("give ?dataset= or ?status= (or both)")


@app.post("/validate", summary="Dry-run data preparation; returns the report")
def validate(request: ValidateRequest) -> dict[str, Any]:
    from mixtune.api.validation import validate_dataset  # data preparation: imported when used
    from mixtune.dataprep import DatasetError

    try:
        return validate_dataset(request).model_dump(mode="json")
    except DatasetError as exc:
        raise BadRequestError(str(exc)) from exc


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> dict[str, Any]:
    return openapi_document(app.get_openapi_json_schema(title="mixtune", version="1"))


@lambda_entry("api")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    reason = unreadable_body(event)
    return refusal(reason) if reason else app.resolve(event, context)
