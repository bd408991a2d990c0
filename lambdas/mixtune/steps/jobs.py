"""Steps ``*Launch`` and ``*Poll``: submit a smoke-training, training or evaluation job to the
run's backend, then read its state until it ends."""

from __future__ import annotations

from typing import Any

from mixtune import layout
from mixtune.backends import JobRef, JobState, get_backend
from mixtune.backends.jobs import backend_of, job_spec
from mixtune.errors import IllegalTransition, JobFailedError, PollLimitExceeded, retryable_aws_errors
from mixtune.observability import logger, metrics, traced
from mixtune.runs.model import TERMINAL, RunStatus
from mixtune.runs.repository import RunsRepository
from mixtune.runs.validation import check_costs
from mixtune.settings import get_settings
from mixtune.steps.state import JobSlot, LaunchInput, PollInput

_LINEAGE_FIELD = {"smoke": "smoke_uri", "train": "train_uri"}
_DATA_KINDS = ("prepare", "mix")  # their outputs are recorded when they conclude


@traced
def launch(step: LaunchInput) -> JobSlot:
    """Submit the step's job, after the deployment's cost guard passed again (a run may have
    been requested before a limit was lowered). A job submitted for a run that ended in the
    meantime (the other Evaluate branch failed) is stopped at once."""
    settings = get_settings()
    check_costs(step.config, settings)
    if step.arm:
        from mixtune.steps.sweep import launch_arm

        return launch_arm(step, settings)
    spec = job_spec(
        step.run_id,
        step.kind,
        step.config,
        settings,
        step.prepared_uri,
        step.mix,
        step.train,
        step.source_uri,
    )
    backend = get_backend(backend_of(step.config, settings), settings)
    with retryable_aws_errors():
        ref = backend.submit(spec)
    repo = RunsRepository.from_settings()
    run = repo.get(step.run_id)
    if run.status in TERMINAL:
        backend.cancel(ref)
        raise IllegalTransition(f"run {step.run_id} ended {run.status}; its {step.kind} job was stopped")
    lineage: dict[str, Any] = {"job_ids": {**run.lineage.job_ids, step.kind: ref.id}}
    if step.kind in _LINEAGE_FIELD:
        lineage[_LINEAGE_FIELD[step.kind]] = spec.output_uri
    elif step.kind not in _DATA_KINDS:
        lineage["eval_uris"] = {**run.lineage.eval_uris, step.kind: spec.output_uri}
    if step.kind == "train":
        lineage["adapter_uri"] = layout.adapter(spec.output_uri)
    if run.status == RunStatus.PENDING:  # the prepare job: the run is PREPARED once it concludes
        repo.update(step.run_id, stage=step.kind, lineage=lineage)
    else:
        repo.transition(step.run_id, RunStatus.RUNNING, stage=step.kind, lineage=lineage)
    logger.info("job submitted", extra={"run_id": step.run_id, "kind": step.kind, "job_id": ref.id})
    metrics.add_metric(name="JobsLaunched", unit="Count", value=1)
    return JobSlot(kind=step.kind, job=ref.model_dump(mode="json"), output_uri=spec.output_uri)


@traced
def poll(step: PollInput) -> JobSlot:
    """The job's new slot; raises JobFailedError when it failed, PollLimitExceeded after max_polls."""
    ref = JobRef.model_validate(step.job.job)
    with retryable_aws_errors():
        status = get_backend(ref.backend, get_settings()).status(ref)
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
