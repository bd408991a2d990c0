"""Function ``notify`` (states ``Notify*``): publish the run's outcome to the SNS topic."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.outcome import notify
from mixtune.steps.state import NotifyInput


@lambda_entry("notify")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return notify(NotifyInput.model_validate(event)).model_dump(mode="json")
