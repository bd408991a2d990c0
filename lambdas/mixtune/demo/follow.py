"""Follow one run: its record (through the API), its execution's states, its training loss."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from pydantic import BaseModel, Field

from mixtune import layout
from mixtune.report.inputs import parse_jsonl
from mixtune.report.timeline import Phase, phases_from_history
from mixtune.runs.model import TERMINAL


class Snapshot(BaseModel):
    run: dict[str, Any] | None = None
    execution_status: str | None = None
    phases: list[Phase] = Field(default_factory=list)
    loss: list[tuple[int, float]] = Field(default_factory=list)
    smoke_loss: list[tuple[int, float]] = Field(default_factory=list)

    @property
    def status(self) -> str:
        return str((self.run or {}).get("status") or "PENDING")

    @property
    def done(self) -> bool:
        if self.status not in TERMINAL:
            return False
        # The run's record turns terminal in Record/MarkFailed; Notify (which writes the
        # report) still follows.
        return self.status == "REJECTED" or self.execution_status not in (None, "RUNNING")


def parse_progress(text: str) -> list[tuple[int, float]]:
    return [
        (int(row["step"]), float(row["loss"]))
        for row in parse_jsonl(text)
        if isinstance(row.get("loss"), int | float) and "step" in row
    ]


class RunFollower:
    def __init__(self, api_endpoint: str, s3: Any, sfn: Any, run_id: str) -> None:
        self.api_endpoint, self.s3, self.sfn, self.run_id = api_endpoint, s3, sfn, run_id

    def run_record(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.api_endpoint}/runs/{self.run_id}", timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def read_s3_text(self, uri: str | None) -> str | None:
        if not uri or not uri.startswith("s3://"):
            return None
        bucket, _, key = uri[5:].partition("/")
        try:
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
        except self.s3.exceptions.NoSuchKey:
            return None

    def _progress(self, output_uri: str | None) -> list[tuple[int, float]]:
        if not output_uri:
            return []
        text = self.read_s3_text(layout.progress(output_uri))
        return parse_progress(text) if text else []

    def snapshot(self) -> Snapshot:
        run = self.run_record()
        snap = Snapshot(run=run)
        if run is None:
            return snap
        lineage = run.get("lineage") or {}
        arn = lineage.get("execution_arn")
        if arn:
            try:
                described = self.sfn.describe_execution(executionArn=arn)
                snap.execution_status = described["status"]
                history = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                snap.phases = phases_from_history(history)
            except self.sfn.exceptions.ExecutionDoesNotExist:
                pass
        snap.loss = self._progress(lineage.get("train_uri"))
        snap.smoke_loss = self._progress(lineage.get("smoke_uri"))
        return snap
