"""Requests and replies of the REST API (the OpenAPI schema is generated from these)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mixtune.report.links import ReportLink
from mixtune.runs.model import Run, RunConfig, RunStatus
from mixtune.settings import get_settings

MAX_INLINE_RECORDS = 1000
# Run ids are `<dataset slug>-<16 hex>` (mixtune.runs.model); anything else names no run.
RUN_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


def check_raw_uri(uri: str) -> str:
    """An s3:// URI of an object inside the raw bucket, or a ValueError saying what is wrong."""
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

    @classmethod
    def of(cls, run: Run) -> RunAccepted:
        return cls(run_id=run.run_id, status=run.status, dataset=run.dataset, location=f"/runs/{run.run_id}")


class RunDetail(Run):
    """``GET /runs/{id}``: the run, with a fresh link to its report once it has one."""

    report: ReportLink | None = None

    @classmethod
    def of(cls, run: Run, report: ReportLink | None) -> RunDetail:
        return cls.model_validate({**run.model_dump(), "report": report})


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
