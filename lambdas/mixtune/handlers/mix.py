"""Function ``mix`` (state ``Mix``): blend the prepared domain data with general data."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.mix import mix_run
from mixtune.steps.state import MixInput


@lambda_entry("mix")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return mix_run(MixInput.model_validate(event)).model_dump(mode="json")
