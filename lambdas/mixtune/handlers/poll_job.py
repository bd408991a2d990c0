"""Function ``poll_job`` (states ``*Poll``): a job's state; fails the step when the job failed
or was polled too long."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.jobs import poll
from mixtune.steps.state import PollInput


@lambda_entry("poll_job")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return poll(PollInput.model_validate(event)).model_dump(mode="json")
