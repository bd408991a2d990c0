"""Follow one run: its record (through the API), its execution's states, its training loss."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from mixtune.demo.report import StateTiming

# Launch/Wait/Poll/Done states of one long step show as one phase.
_PHASE_SUFFIX = re.compile(r"(Launch|Wait|Poll|Done|Check)$")
_INSTANT_STATES = ("Choice", "Pass", "Succeed", "Fail")
TERMINAL = {"REJECTED", "SUCCEEDED", "REJECTED_BY_GATE", "FAILED"}


def phase_of(state_name: str) -> str:
    return _PHASE_SUFFIX.sub("", state_name) or state_name


class Phase(BaseModel):
    name: str
    started: datetime
    ended: datetime | None = None
    failed: bool = False

    def seconds(self, now: datetime) -> float:
        return ((self.ended or now) - self.started).total_seconds()


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
        # The run's record turns terminal in Record/MarkFailed; Notify still follows.
        return self.status == "REJECTED" or self.execution_status not in (None, "RUNNING")

    def timings(self, now: datetime) -> list[StateTiming]:
        return [
            StateTiming(
                name=p.name,
                seconds=p.seconds(now),
                status="failed" if p.failed else ("done" if p.ended else "running"),
            )
            for p in self.phases
        ]


def phases_from_history(events: list[dict[str, Any]]) -> list[Phase]:
    """Phases in order of first entry, from Step Functions execution history events."""
    phases: dict[str, Phase] = {}
    open_states: dict[str, str] = {}  # state -> phase, while entered and not exited
    for event in events:
        kind, stamp = event["type"], event["timestamp"]
        if kind.startswith(_INSTANT_STATES):
            continue  # Choice/Pass/Succeed/Fail take no time: not worth a row
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            phase = phase_of(name)
            if phase not in phases:
                phases[phase] = Phase(name=phase, started=stamp)
            phases[phase].ended = None
            open_states[name] = phase
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            phase = open_states.pop(name, phase_of(name))
            if phase in phases:
                phases[phase].ended = stamp
        elif kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed") and open_states:
            last = list(open_states.values())[-1]
            phases[last].failed = True
    return list(phases.values())


def parse_progress(text: str) -> list[tuple[int, float]]:
    points = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line being written
        if isinstance(row, dict) and isinstance(row.get("loss"), int | float) and "step" in row:
            points.append((int(row["step"]), float(row["loss"])))
    return points


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
        text = self.read_s3_text(output_uri.rstrip("/") + "/progress.jsonl")
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
