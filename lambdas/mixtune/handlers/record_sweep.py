"""Function ``record_sweep`` (state ``RecordSweep``): every arm against the baseline, the
frontier and the choice, recorded; the chosen adapter promoted."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.sweep import SweepRecordInput, record_sweep


@lambda_entry("record_sweep")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return record_sweep(SweepRecordInput.model_validate(event)).model_dump(mode="json")
