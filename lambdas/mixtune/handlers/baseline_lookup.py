"""Step `BaselineLookup`: is the base model already scored under this eval config?"""

from __future__ import annotations

from typing import Any

from mixtune.handlers.common import lambda_entry, logger, repository, traced
from mixtune.handlers.steps import BaselineLookupOutput, ConfiguredStep


@traced
def lookup(step: ConfiguredStep) -> BaselineLookupOutput:
    from mixtune.handlers.jobs import base_model_of
    from mixtune.settings import get_settings

    base_model = base_model_of(step.config, get_settings())
    config_hash = step.config.evaluation.config_hash()
    cached = repository().get_baseline(base_model, config_hash)
    logger.info("baseline lookup", extra={"run_id": step.run_id, "cached": cached is not None})
    return BaselineLookupOutput(
        cached=cached is not None,
        base_model=base_model,
        eval_config_hash=config_hash,
        output_uri=cached.eval_uri.rsplit("/", 1)[0] + "/" if cached else None,
    )


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return lookup(ConfiguredStep.model_validate(event)).model_dump(mode="json")
