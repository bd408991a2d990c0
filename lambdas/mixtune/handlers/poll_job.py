"""Steps `*Poll`: read a job's state; fail the step when the job failed or polled too long."""

from __future__ import annotations

from typing import Any

from mixtune.errors import JobFailedError, PollLimitExceeded
from mixtune.handlers.common import as_transient, lambda_entry, logger, traced
from mixtune.handlers.steps import JobSlot, RunStep


class PollInput(RunStep):
    job: JobSlot
    max_polls: int = 720


@traced
def poll(step: PollInput) -> JobSlot:
    from mixtune.backends import JobRef, JobState, get_backend
    from mixtune.settings import get_settings

    ref = JobRef.model_validate(step.job.job)
    try:
        status = get_backend(ref.backend, get_settings()).status(ref)
    except Exception as exc:
        raise as_transient(exc) from exc
    polls = step.job.polls + 1
    state = JobState(status.state)
    logger.info(
        "job polled",
        extra={"run_id": step.run_id, "kind": step.job.kind, "state": state.value, "polls": polls},
    )
    if state in (JobState.FAILED, JobState.CANCELLED):
        reason = status.reason or "no reason given"
        raise JobFailedError(f"{step.job.kind} job {ref.id} {state.value.lower()}: {reason}")
    if state != JobState.SUCCEEDED and polls >= step.max_polls:
        raise PollLimitExceeded(
            f"{step.job.kind} job {ref.id} still {state.value} after {polls} polls (max_polls={step.max_polls})"
        )
    return step.job.model_copy(update={"state": state.value, "polls": polls, "progress": status.progress})


@lambda_entry
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return poll(PollInput.model_validate(event)).model_dump(mode="json")
