"""Function `api`: the REST API (API Gateway REST, Powertools resolver with validation).

POST /runs       start a run on a dataset already in the raw bucket (202 + run id)
GET  /runs/{id}  one run
GET  /runs       runs of a dataset (?dataset=) or in a status (?status=), newest first
POST /validate   dry-run preparation of an S3 object or a small inline payload
GET  /openapi.json  the generated OpenAPI schema
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixtune.handlers.common import lambda_entry, logger, metrics, repository
from mixtune.runs.model import Run, RunConfig, RunStatus

MAX_INLINE_RECORDS = 1000

app = APIGatewayRestResolver(enable_validation=True)


def check_raw_uri(uri: str) -> str:
    """An s3:// URI of an object inside the raw bucket, or a ValueError saying what is wrong."""
    from mixtune.settings import get_settings

    raw = get_settings().raw_bucket
    if not uri.startswith("s3://"):
        raise ValueError(f"must be an s3:// URI (s3://{raw}/incoming/<file>), got {uri[:200]!r}")
    bucket, _, key = uri[5:].partition("/")
    if bucket != raw:
        raise ValueError(f"must be inside the raw bucket s3://{raw}/, not s3://{bucket}/")
    if not key or key.endswith("/"):
        raise ValueError("must name an object (a file), not a bucket or a folder")
    return uri


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_uri: str = Field(description="s3:// URI of the dataset file inside the raw bucket")
    dataset: str | None = Field(default=None, description="a name for the dataset; default: the file's stem")
    config: RunConfig = Field(default_factory=RunConfig)

    @field_validator("dataset_uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        return check_raw_uri(value)


class RunAccepted(BaseModel):
    run_id: str
    status: RunStatus
    dataset: str
    location: str


class RunList(BaseModel):
    runs: list[Run]


class ValidateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset_uri: str | None = Field(default=None, description="s3:// URI inside the raw bucket")
    records: list[dict[str, Any]] | None = Field(
        default=None, max_length=MAX_INLINE_RECORDS, description="inline rows, as in a JSONL file"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="dataprep PrepareOptions fields")

    @field_validator("dataset_uri")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        return None if value is None else check_raw_uri(value)

    @model_validator(mode="after")
    def _one_source(self) -> ValidateRequest:
        if (self.dataset_uri is None) == (self.records is None):
            raise ValueError("give exactly one of dataset_uri or records")
        return self


class ErrorBody(BaseModel):
    message: str
    errors: list[str] = Field(default_factory=list)


def _describe(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}"
    if kind == "missing":
        return f"missing field {loc!r}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def _bad_request(message: str, errors: list[str] | None = None) -> Response:
    return Response(
        status_code=400,
        content_type=content_types.APPLICATION_JSON,
        body=ErrorBody(message=message, errors=errors or []).model_dump_json(),
    )


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response:
    errors = [_describe(e) for e in exc.errors()]
    return _bad_request("bad request: " + "; ".join(errors[:5]), errors)


@app.post("/runs", status_code=202, summary="Start a run", responses={400: {"description": "bad request"}})
def create_run(request: RunRequest) -> Response[RunAccepted]:
    from mixtune import storage
    from mixtune.handlers.execution import invoke_prepare
    from mixtune.runs.model import Lineage, dataset_name, new_run_id
    from mixtune.settings import get_settings

    settings = get_settings()
    if not storage.exists(request.dataset_uri):
        raise BadRequestError(f"no object at {request.dataset_uri}")
    dataset = dataset_name(request.dataset or request.dataset_uri)
    run = Run(
        run_id=new_run_id(dataset),
        dataset=dataset,
        trigger="api",
        config=request.config.resolved(settings),
        lineage=Lineage(source_uri=request.dataset_uri),
    )
    repo = repository()
    repo.create(run)
    try:
        invoke_prepare(settings.prepare_function_name, run.run_id)
    except Exception as exc:
        # Leave no PENDING run that nothing will ever pick up.
        from mixtune.runs.model import Failure

        repo.transition(
            run.run_id, RunStatus.FAILED, failure=Failure(error=type(exc).__name__, cause=str(exc))
        )
        raise
    logger.info("run requested", extra={"run_id": run.run_id, "dataset": dataset})
    metrics.add_metric(name="RunsRequested", unit="Count", value=1)
    body = RunAccepted(run_id=run.run_id, status=run.status, dataset=dataset, location=f"/runs/{run.run_id}")
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=body,
        headers={"Location": body.location},
    )


@app.get("/runs/<run_id>", summary="One run", responses={404: {"description": "unknown run"}})
def get_run(run_id: str) -> Run:
    run = repository().find(run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id!r}")
    return run


@app.get("/runs", summary="Runs of a dataset or in a status, newest first")
def list_runs(
    dataset: Annotated[str | None, Query(description="dataset name")] = None,
    status: Annotated[RunStatus | None, Query(description="run status")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RunList:
    repo = repository()
    if dataset:
        return RunList(runs=repo.list_by_dataset(dataset, status, limit))
    if status:
        return RunList(runs=repo.list_by_status(status, limit))
    raise BadRequestError("give ?dataset= or ?status= (or both)")


@app.post("/validate", summary="Dry-run data preparation; returns the report")
def validate(request: ValidateRequest) -> dict[str, Any]:
    import json
    import tempfile
    from pathlib import Path

    from mixtune.dataprep import DatasetError, PrepareOptions, prepare_dataset

    options = PrepareOptions.model_validate(request.options)
    with tempfile.TemporaryDirectory(prefix="mixtune-validate-") as tmp:
        source = request.dataset_uri
        if source is None:
            path = Path(tmp) / "inline.jsonl"
            path.write_text(
                "".join(json.dumps(row) + "\n" for row in request.records or []), encoding="utf-8"
            )
            source = str(path)
        try:
            report = prepare_dataset(source, str(Path(tmp) / "out"), options)
        except DatasetError as exc:
            raise BadRequestError(str(exc)) from exc
    return report.model_dump(mode="json")


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=app.get_openapi_json_schema(title="mixtune", version="1"),
    )


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
