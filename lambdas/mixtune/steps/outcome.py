"""Steps ``MarkFailed`` and ``Notify*``: how a run ends and how the world hears of it."""

from __future__ import annotations

import json

from mixtune.observability import traced
from mixtune.runs.ending import announce_once, fail_run
from mixtune.runs.model import Failure
from mixtune.runs.repository import RunsRepository
from mixtune.steps.state import MarkFailedInput, NotifyInput, NotifyOutput, RunStatusOutput, StepError


def readable_cause(error: StepError) -> str:
    """A Lambda error's Cause is JSON ({errorType, errorMessage, stackTrace}): keep the message."""
    try:
        parsed = json.loads(error.cause)
    except ValueError:
        return error.cause[:2000]
    if isinstance(parsed, dict) and parsed.get("errorMessage"):
        return str(parsed["errorMessage"])[:2000]
    return error.cause[:2000]


def failure_of(error: StepError) -> Failure:
    return Failure(error=error.error, cause=readable_cause(error))


@traced
def mark_failed(step: MarkFailedInput) -> RunStatusOutput:
    """The Catch target of every state: the run ends FAILED with the error that ended it and
    its jobs are stopped (NotifyFailure announces it). A run that ended already keeps its outcome."""
    run, ended_now = fail_run(step.run_id, failure_of(step.error), announce=False)
    return RunStatusOutput(run_id=step.run_id, status=run.status.value, ended_now=ended_now)


@traced
def notify(step: NotifyInput) -> NotifyOutput:
    """The run's outcome on SNS, once (a retried Notify publishes nothing new). The failure
    notice first makes sure the run is FAILED: when MarkFailed itself failed or timed out, the
    run may still read RUNNING here (MarkFailed and the execution-status rule stop the jobs)."""
    if step.event == "failed":
        run, _ = fail_run(step.run_id, failure_of(step.error or StepError()), announce=False, stop=False)
    else:
        run = RunsRepository.from_settings().get(step.run_id)
    announcement = announce_once(run)
    return NotifyOutput(
        run_id=run.run_id,
        status=run.status.value,
        announced=announcement is not None,
        message_id=announcement.message_id if announcement else None,
    )
