"""Failures the state machine cannot catch, heard by the ``on_failure`` function:

- an execution that FAILED, TIMED_OUT or was ABORTED (EventBridge "Step Functions Execution
  Status Change", emitted by Step Functions on the default bus; a rule matches those
  statuses): a timed-out or aborted execution, or one that hit the history limit, never
  reaches MarkFailed. The execution name is the run id.
- an asynchronous invocation of ``prepare`` or ``schedule`` that failed every attempt (Lambda
  retries twice, then sends an invocation record to the on-failure destination).

Either way the run ends FAILED with the cause, its jobs are stopped (by ``mark_failed``, see
:mod:`mixtune.runs.stopping`) and it is announced once (a run that ended already keeps its outcome).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixtune.observability import logger
from mixtune.runs.ending import announce_once
from mixtune.runs.model import Failure, RunStatus
from mixtune.runs.stopping import end_and_stop
from mixtune.settings import get_settings

EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
_STATUS_ERRORS = {
    "FAILED": "ExecutionFailed",
    "TIMED_OUT": "ExecutionTimedOut",
    "ABORTED": "ExecutionAborted",
}


def execution_status_pattern(state_machine_arn: str) -> dict[str, Any]:
    """The EventBridge rule's pattern: this state machine's executions that did not succeed
    (the CDK app and the local cloud deploy the same rule)."""
    return {
        "source": ["aws.states"],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"status": list(FAILED_STATUSES), "stateMachineArn": [state_machine_arn]},
    }


class ExecutionDetail(BaseModel):
    """The event's ``detail`` (AWS Step Functions Developer Guide, "Step Functions events in
    EventBridge"): the fields used here; ``error`` and ``cause`` are present when it failed."""

    model_config = ConfigDict(extra="ignore")

    executionArn: str
    stateMachineArn: str = ""
    name: str
    status: str
    error: str | None = None
    cause: str | None = None


class ExecutionStatusChange(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    detail_type: Literal["Step Functions Execution Status Change"] = Field(alias="detail-type")
    source: Literal["aws.states"]
    detail: ExecutionDetail


class RequestContext(BaseModel):
    model_config = ConfigDict(extra="ignore")

    functionArn: str
    condition: str = ""  # RetriesExhausted, EventAgeExceeded
    approximateInvokeCount: int = 0


class InvocationRecord(BaseModel):
    """What Lambda sends an asynchronous invocation's on-failure destination (AWS Lambda
    Developer Guide, "Capturing records of Lambda asynchronous invocations")."""

    model_config = ConfigDict(extra="ignore")

    requestContext: RequestContext
    requestPayload: Any = None
    responsePayload: Any = None


class EndedRun(BaseModel):
    run_id: str
    status: RunStatus
    ended_now: bool


class FailureOutcome(BaseModel):
    heard: str
    runs: list[EndedRun] = Field(default_factory=list)


def on_failure(event: dict[str, Any]) -> FailureOutcome:
    """Dispatch on the event's shape: an execution status change or an invocation record."""
    if event.get("detail-type") == EXECUTION_STATUS_CHANGE:
        return execution_ended(ExecutionStatusChange.model_validate(event))
    return invocation_failed(InvocationRecord.model_validate(event))


def execution_ended(event: ExecutionStatusChange) -> FailureOutcome:
    detail = event.detail
    heard = f"execution {detail.name} {detail.status}"
    if detail.status not in FAILED_STATUSES:
        return FailureOutcome(heard=heard)
    from mixtune.runs.repository import RunsRepository

    if RunsRepository.from_settings().find(detail.name) is None:
        logger.warning("execution of no known run", extra={"execution_arn": detail.executionArn})
        return FailureOutcome(heard=heard)
    failure = Failure(
        error=detail.error or _STATUS_ERRORS[detail.status],
        cause=(detail.cause or f"the execution ended {detail.status}")[:2000],
    )
    # mark_failed (the launcher role) ends the run and stops its jobs; then announce it once.
    ended_now = end_and_stop(get_settings().mark_failed_function_name, detail.name, failure)
    run = RunsRepository.from_settings().get(detail.name)
    if run.status == RunStatus.FAILED:
        announce_once(run)
    return FailureOutcome(
        heard=heard, runs=[EndedRun(run_id=run.run_id, status=run.status, ended_now=ended_now)]
    )


def invocation_failed(record: InvocationRecord) -> FailureOutcome:
    """The runs an exhausted asynchronous invocation of ``prepare`` or ``schedule`` was for."""
    from mixtune.runs.lifecycle import PrepareRequest, fail_request, scheduled_run_id
    from mixtune.runs.repository import RunsRepository
    from mixtune.runs.schedules import datasets_to_rerun
    from mixtune.runs.triggers import ScheduledEvent, requests_from_event

    context = record.requestContext
    function = context.functionArn.split(":function:")[-1].split(":")[0]
    response = record.responsePayload if isinstance(record.responsePayload, dict) else {}
    error = str(response.get("errorType") or context.condition or "InvocationFailed")
    cause = (
        f"{function} failed {context.approximateInvokeCount} attempt(s) ({context.condition or 'failed'}): "
        f"{response.get('errorMessage') or 'no error message'}"
    )[:2000]
    failure = Failure(error=error, cause=cause)
    payload = record.requestPayload if isinstance(record.requestPayload, dict) else {}
    requests: list[PrepareRequest]
    if "run_request" in payload or "Records" in payload or payload.get("detail-type") == "Object Created":
        requests = requests_from_event(payload)
    else:  # the schedule: the runs its event opened (re-evaluations are not re-derived)
        event = ScheduledEvent.model_validate(payload)
        repo = RunsRepository.from_settings()
        ids = [scheduled_run_id(event.id, uri) for uri in datasets_to_rerun(event)]
        requests = [PrepareRequest(run_id=run_id) for run_id in ids if repo.find(run_id) is not None]
    ended = []
    for request in requests:
        run, ended_now = fail_request(request, failure)
        ended.append(EndedRun(run_id=run.run_id, status=run.status, ended_now=ended_now))
    logger.info("invocation failure handled", extra={"function": function, "runs": len(ended)})
    return FailureOutcome(heard=f"{function} invocation {context.condition or 'failed'}", runs=ended)
