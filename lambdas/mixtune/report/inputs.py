"""What a report is built from: the run's item and the files and history it can read.

Everything is read tolerantly: a run that failed early has no manifest, a rejected one no
execution; what is missing is simply absent from the report (and named in ``missing``).
Nothing here keeps dataset text: only reports, manifests, metrics and the history.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from mixtune import layout, storage
from mixtune.runs.model import Run

JsonReader = Callable[[str], Any]


class ReportInputs(BaseModel):
    """The run, plus the parsed JSON of each file found (as plain data: old and new schemas alike)."""

    run: Run
    prepare_report: dict[str, Any] | None = None
    manifest: dict[str, Any] | None = None
    train_metrics: dict[str, Any] | None = None
    train_progress: list[dict[str, Any]] = Field(default_factory=list)
    smoke_metrics: dict[str, Any] | None = None
    smoke_progress: list[dict[str, Any]] = Field(default_factory=list)
    evals: dict[str, dict[str, Any]] = Field(default_factory=dict)  # "baseline"/"tuned" -> eval.json
    history: list[dict[str, Any]] = Field(default_factory=list)  # Step Functions events
    missing: list[str] = Field(default_factory=list)  # URIs that could not be read


def parse_jsonl(text: str) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; a line being written (not yet JSON) is skipped."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _eval_uri(uri: str) -> str:
    """Lineage holds eval.json itself after Record, the job's folder before."""
    return uri if uri.endswith(".json") else layout.eval_result(uri)


class _Reader:
    def __init__(self, read_text: Callable[[str], str | None]) -> None:
        self.read_text = read_text
        self.missing: list[str] = []

    def text(self, uri: str | None) -> str | None:
        if not uri:
            return None
        text = self.read_text(uri)
        if text is None:
            self.missing.append(uri)
        return text

    def json(self, uri: str | None) -> dict[str, Any] | None:
        text = self.text(uri)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            self.missing.append(uri or "")
            return None
        return data if isinstance(data, dict) else None


def read_storage_text(uri: str) -> str | None:
    """A small file's text through mixtune.storage; None when it is not there (or not ours to read)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return storage.read_bytes(uri).decode("utf-8", "replace")
    except (FileNotFoundError, ClientError, BotoCoreError):
        return None


def gather_inputs(
    run: Run,
    read_text: Callable[[str], str | None] = read_storage_text,
    history: Callable[[str], list[dict[str, Any]]] | None = None,
) -> ReportInputs:
    """Read what the run's lineage points at; ``history`` returns an execution's events."""
    reader = _Reader(read_text)
    lineage = run.lineage
    inputs = ReportInputs(run=run)
    inputs.prepare_report = reader.json(lineage.report_uri)
    inputs.manifest = reader.json(lineage.manifest_uri)
    if lineage.train_uri:
        inputs.train_metrics = reader.json(layout.train_metrics(lineage.train_uri))
        inputs.train_progress = parse_jsonl(reader.text(layout.progress(lineage.train_uri)) or "")
    if lineage.smoke_uri:
        inputs.smoke_metrics = reader.json(layout.train_metrics(lineage.smoke_uri))
        inputs.smoke_progress = parse_jsonl(reader.text(layout.progress(lineage.smoke_uri)) or "")
    for side in ("baseline", "tuned"):
        uri = lineage.eval_uris.get(side) or lineage.eval_uris.get(f"evaluate_{side}")
        found = reader.json(_eval_uri(uri)) if uri else None
        if found is not None:
            inputs.evals[side] = found
    if lineage.execution_arn and history is not None:
        inputs.history = history(lineage.execution_arn)
    inputs.missing = reader.missing
    return inputs
