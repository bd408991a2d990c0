"""Function ``baseline_lookup`` (state ``BaselineLookup``): is the base model already scored
under this eval config?"""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.steps.evaluation import lookup_baseline
from mixtune.steps.state import ConfiguredStep


@lambda_entry("baseline_lookup")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return lookup_baseline(ConfiguredStep.model_validate(event)).model_dump(mode="json")
