"""The state file of a running local cloud: where `mixtune local down`, `mixtune runs` and
the demo find its endpoints and the process to stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel

DEFAULT_STATE_DIR = Path(".mixtune") / "local"
STATE_FILE = "state.json"


class Resources(BaseModel):
    """What the local deploy created (the same resources as the CDK app)."""

    raw_bucket: str
    work_bucket: str
    runs_table: str
    idempotency_table: str
    topic_arn: str
    state_machine_arn: str
    functions: dict[str, str]  # logical name -> function ARN
    rules: list[str]
    environment: dict[str, str]  # the functions' shared environment


class LocalState(BaseModel):
    pid: int
    endpoint: str  # the AWS endpoint (moto server)
    api_endpoint: str  # the API Gateway proxy
    region: str
    state_dir: str
    log_dir: str
    resources: Resources


def state_path(state_dir: Path | str | None = None) -> Path:
    return Path(state_dir or os.environ.get("MIXTUNE_LOCAL_STATE_DIR") or DEFAULT_STATE_DIR) / STATE_FILE


def write_state(state: LocalState) -> Path:
    path = state_path(state.state_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(state.model_dump_json(indent=2))
    tmp.replace(path)
    return path


def read_state(state_dir: Path | str | None = None) -> LocalState | None:
    path = state_path(state_dir)
    try:
        return LocalState.model_validate(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def clear_state(state_dir: Path | str | None, pid: int) -> None:
    """Remove the state file if it still describes process ``pid``."""
    current = read_state(state_dir)
    if current is not None and current.pid == pid:
        state_path(state_dir).unlink(missing_ok=True)
