"""How a run ends FAILED, whoever finds out: the state machine's MarkFailed and NotifyFailure,
the execution-status rule (an execution that failed, timed out or was aborted), the on-failure
destination of the asynchronous invocations, a trigger that could not hand a run on.

Every path is idempotent: a run that already ended keeps its outcome, its jobs are stopped
(stopping a finished job is a no-op), and each outcome is announced once (:func:`announce_once`).
"""

from __future__ import annotations

from mixtune.backends import JobRef, get_backend
from mixtune.errors import IllegalTransition
from mixtune.notifications import Announcement
from mixtune.observability import logger, metrics
from mixtune.runs.model import TERMINAL, Failure, Run, RunStatus
from mixtune.runs.repository import RunsRepository


def fail_run(run_id: str, failure: Failure, *, announce: bool = True, stop: bool = True) -> tuple[Run, bool]:
    """Move the run to FAILED unless it ended already, stop its jobs (``stop``: the caller's
    role may stop jobs), and (when this call ended it and ``announce``) publish the failure.
    Returns (the run, whether this call ended it)."""
    repo = RunsRepository.from_settings()
    run = repo.get(run_id)
    ended_now = False
    if run.status not in TERMINAL:
        try:
            run = repo.transition(
                run_id, RunStatus.FAILED, failure=failure, summary=f"{failure.error}: {failure.cause}"[:1000]
            )
            ended_now = True
        except IllegalTransition:
            run = repo.get(run_id)  # another path ended it first
    if ended_now:
        logger.error("run failed", extra={"run_id": run_id, "error": failure.error, "stage": run.stage})
        metrics.add_metric(name="RunsFailed", unit="Count", value=1)
    else:
        logger.info("run had ended already", extra={"run_id": run_id, "status": run.status.value})
    if stop and run.status == RunStatus.FAILED:
        stop_jobs(run)
    if announce and run.status == RunStatus.FAILED:
        announce_once(run)  # also when an earlier pass ended it but died before announcing
    return run, ended_now


def announce_once(run: Run) -> Announcement | None:
    """Publish the run's status on SNS unless it was announced already (by a retry, a second
    trigger, another path): the run item records what was announced. None when skipped."""
    from mixtune import notifications

    repo = RunsRepository.from_settings()
    if not repo.claim_notification(run.run_id, run.status):
        logger.info("announced already", extra={"run_id": run.run_id, "status": run.status.value})
        return None
    try:
        return notifications.announce(run)
    except BaseException:
        repo.release_notification(run.run_id, run.status)
        raise


def stop_jobs(run: Run) -> list[str]:
    """Cancel every job the run launched (``lineage.job_ids``) on its backend; returns the ids
    whose cancel call succeeded. A job that cannot be stopped is logged, never raised: the
    run's end must not depend on it."""
    if not run.lineage.job_ids:
        return []
    backend_name = run.config.backend or ""
    stopped = []
    try:
        backend = get_backend(backend_name)
    except Exception as exc:
        logger.warning("no backend to stop jobs", extra={"run_id": run.run_id, "error": str(exc)})
        return []
    for kind, job_id in sorted(run.lineage.job_ids.items()):
        try:
            backend.cancel(JobRef(backend=backend_name, id=job_id))
        except Exception as exc:  # best effort, one job at a time
            logger.warning(
                "could not stop job",
                extra={"run_id": run.run_id, "kind": kind, "job_id": job_id, "error": str(exc)[:500]},
            )
            continue
        stopped.append(job_id)
    logger.info("jobs stopped", extra={"run_id": run.run_id, "jobs": stopped})
    return stopped
