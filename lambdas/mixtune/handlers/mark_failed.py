"""Function ``mark_failed`` (state ``MarkFailed``, the Catch target of every state)."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.outcome import mark_failed
from mixtune.steps.state import MarkFailedInput


@lambda_entry("mark_failed")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return mark_failed(MarkFailedInput.model_validate(event)).model_dump(mode="json")
