"""Steps ``MarkFailed`` and ``Notify*``: how a run ends and how the world hears of it."""

from __future__ import annotations

import json

from mixtune.notifications import Announcement, announce
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import TERMINAL, Failure, RunStatus
from mixtune.runs.repository import RunsRepository
from mixtune.steps.state import MarkFailedInput, NotifyInput, RunStatusOutput, StepError


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
def mark_failed(step: MarkFailedInput) -> RunStatusOutput:
    """The Catch target of every state: the run ends FAILED with the error that ended it."""
    repo = RunsRepository.from_settings()
    run = repo.get(step.run_id)
    if run.status in TERMINAL:
        # A failure after the outcome was recorded (a notify that kept failing): keep the outcome.
        logger.warning("run already finished", extra={"run_id": step.run_id, "status": run.status.value})
        return RunStatusOutput(run_id=step.run_id, status=run.status.value)
    failure = Failure(error=step.error.error, cause=readable_cause(step.error))
    run = repo.transition(
        step.run_id, RunStatus.FAILED, failure=failure, summary=f"{failure.error}: {failure.cause}"
    )
    logger.error("run failed", extra={"run_id": step.run_id, "error": failure.error, "stage": run.stage})
    metrics.add_metric(name="RunsFailed", unit="Count", value=1)
    return RunStatusOutput(run_id=step.run_id, status=run.status.value)


@traced
def notify(step: NotifyInput) -> Announcement:
    return announce(RunsRepository.from_settings().get(step.run_id))
