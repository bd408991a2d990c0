"""Function ``record`` (state ``Record``): compare tuned with baseline, decide the gate, store it."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.evaluation import record
from mixtune.steps.state import RecordInput


@lambda_entry("record")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record(RecordInput.model_validate(event)).model_dump(mode="json")
