"""Step `MarkFailed`: the Catch target of every state; records which error ended the run."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mixtune.handlers.common import lambda_entry, logger, metrics, repository, traced
from mixtune.handlers.steps import RunStep


class StepError(BaseModel):
    """What a Step Functions Catch puts at its ResultPath."""

    model_config = ConfigDict(populate_by_name=True)

    error: str = Field(default="Unknown", alias="Error")
    cause: str = Field(default="", alias="Cause")


class MarkFailedInput(RunStep):
    error: StepError = Field(default_factory=StepError)


def readable_cause(error: StepError) -> str:
    """A Lambda error's Cause is JSON ({errorType, errorMessage, stackTrace}): keep the message."""
    try:
        parsed = json.loads(error.cause)
    except ValueError:
        return error.cause[:2000]
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])[:2000]
    return error.cause[:2000]


@traced
def mark_failed(step: MarkFailedInput) -> dict[str, Any]:
    from mixtune.runs.model import TERMINAL, Failure, RunStatus

    repo = repository()
    run = repo.get(step.run_id)
    if run.status in TERMINAL:
        # A failure after the outcome was recorded (a notify that kept failing): keep the outcome.
        logger.warning("run already finished", extra={"run_id": step.run_id, "status": run.status.value})
        return {"run_id": step.run_id, "status": run.status.value}
    failure = Failure(error=step.error.error, cause=readable_cause(step.error))
    run = repo.transition(
        step.run_id, RunStatus.FAILED, failure=failure, summary=f"{failure.error}: {failure.cause}"
    )
    logger.error("run failed", extra={"run_id": step.run_id, "error": failure.error, "stage": run.stage})
    metrics.add_metric(name="RunsFailed", unit="Count", value=1)
    return {"run_id": step.run_id, "status": run.status.value}


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return mark_failed(MarkFailedInput.model_validate(event))
