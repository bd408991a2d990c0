"""Function ``launch_job`` (states ``*Launch``): submit a step's job to the run's backend."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.jobs import launch
from mixtune.steps.state import LaunchInput


@lambda_entry("launch_job")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return launch(LaunchInput.model_validate(event)).model_dump(mode="json")
