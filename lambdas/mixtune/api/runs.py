"""What the API's routes do (the routes themselves are in :mod:`mixtune.handlers.api`)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError

from mixtune import storage
from mixtune.api.models import RUN_ID_PATTERN, RunAccepted, RunDetail, RunList, RunRequest, ValidateRequest
from mixtune.report.links import link_to
from mixtune.runs.lifecycle import request_run
from mixtune.runs.model import Run, RunStatus
from mixtune.runs.repository import RunsRepository


def accept_run(request: RunRequest) -> RunAccepted:
    """``POST /runs``: the dataset must exist; the config fields the request set go over the
    service default (a config that breaks a rule raises RunConfigError: 400)."""
    if not storage.exists(request.dataset_uri):
        raise BadRequestError(f"no object at {request.dataset_uri}")
    requested = request.config.model_dump(exclude_unset=True)
    return RunAccepted.of(request_run(request.dataset_uri, request.dataset, requested))


def find_run(run_id: str) -> Run:
    run = RunsRepository.from_settings().find(run_id) if RUN_ID_PATTERN.match(run_id) else None
    if run is None:
        raise NotFoundError(f"no run {run_id[:100]!r}")
    return run


def run_detail(run_id: str) -> RunDetail:
    """``GET /runs/{id}``: the run and a freshly signed link to its report."""
    run = find_run(run_id)
    return RunDetail.of(run, link_to(run.lineage.run_report_uri))


def list_runs(dataset: str | None, status: RunStatus | None, limit: int) -> RunList:
    repo = RunsRepository.from_settings()
    if dataset:
        return RunList(runs=repo.list_by_dataset(dataset, status, limit))
    if status:
        return RunList(runs=repo.list_by_status(status, limit))
    raise BadRequestError("give ?dataset= or ?status= (or both)")


def validate(request: ValidateRequest) -> dict[str, Any]:
    from mixtune.api.validation import validate_dataset  # data preparation: imported when used
    from mixtune.dataprep import DatasetError

    try:
        return validate_dataset(request).model_dump(mode="json")
    except DatasetError as exc:
        raise BadRequestError(str(exc)) from exc
