"""Function ``conclude_job`` (states ``PrepareConclude``, ``MixConclude``): record what a
prepare or mix job wrote."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.data_jobs import conclude
from mixtune.steps.state import ConcludeInput


@lambda_entry("conclude_job")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return conclude(ConcludeInput.model_validate(event)).model_dump(mode="json")
