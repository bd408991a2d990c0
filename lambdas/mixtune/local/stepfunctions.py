"""Step Functions for the local cloud: where moto's interpreter differs from AWS.

- **Errors out of a Parallel (or Map) branch.** On AWS a Parallel state fails with its failed
  branch's error, ``States.Timeout`` and the other ``States.*`` names included, so a Catch
  on the Parallel state (``States.ALL``) sends the run to MarkFailed. moto re-raises the
  branch's error through ``CustomErrorName``, which refuses any name starting ``States.``
  ("Custom Error Names MUST NOT begin with the prefix 'States.'"), and the whole execution
  fails with ``States.Runtime``: nothing catches it and the run stays RUNNING (issue 15,
  defect 5). :func:`aws_error_names` re-raises such names as the ``States.*`` errors they are.
- **Execution status changes on EventBridge.** Step Functions sends "Step Functions Execution
  Status Change" events to the default bus; moto sends none. :func:`execution_status_events`
  puts one on moto's default bus whenever an execution ends, with AWS's event shape (AWS Step
  Functions Developer Guide, "Step Functions events in EventBridge"), so the rules deployed
  on it (the ``on_failure`` function's) fire as on AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mixtune.local")

STATUS_CHANGE = "Step Functions Execution Status Change"


def _aws_error_name(error_name: str | None = None) -> Any:
    """The ErrorName AWS reports for a failed branch: a States.* name stays one."""
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    if error_name is not None and error_name.startswith("States."):
        with contextlib.suppress(ValueError):  # a States.* name moto does not know stays refused
            return StatesErrorName.from_name(error_name)
    return CustomErrorName(error_name=error_name)


@contextlib.contextmanager
def aws_error_names() -> Iterator[None]:
    """Patch moto's Parallel and Map states to re-raise a branch's ``States.*`` error as AWS does."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import iteration_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branches_decl

    modules = (branches_decl, iteration_worker)
    saved = [module.CustomErrorName for module in modules]
    for module in modules:
        module.CustomErrorName = _aws_error_name  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            module.CustomErrorName = original  # type: ignore[attr-defined]


def _epoch_ms(moment: datetime | None) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


def status_change_detail(execution: Any) -> dict[str, Any]:
    """The ``detail`` of AWS's event for a moto execution."""
    status = execution.exec_status.value if execution.exec_status else "RUNNING"
    return {
        "executionArn": execution.exec_arn,
        "stateMachineArn": execution.state_machine.arn,
        "name": execution.name,
        "status": status,
        "startDate": _epoch_ms(execution.start_date),
        "stopDate": _epoch_ms(execution.stop_date),
        "input": json.dumps(execution.input_data) if execution.input_data is not None else None,
        "output": json.dumps(execution.output) if execution.output is not None else None,
        "error": execution.error,
        "cause": execution.cause,
    }


def publish_status_change(execution: Any) -> None:
    """Put the execution's status change on moto's default event bus (rules then match it)."""
    from moto.events.models import events_backends

    detail = status_change_detail(execution)
    events_backends[execution.account_id][execution.region_name].put_events(
        [
            {
                "Source": "aws.states",
                "DetailType": STATUS_CHANGE,
                "Detail": json.dumps(detail),
                "Resources": [execution.exec_arn],
                "Time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ]
    )


@contextlib.contextmanager
def execution_status_events() -> Iterator[None]:
    """Emit a status-change event when an execution ends (SUCCEEDED, FAILED, TIMED_OUT, ABORTED)."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated
    sent: set[str] = set()
    lock = threading.Lock()

    def terminated(self: Any) -> None:
        original(self)
        execution = self.execution
        with lock:
            if execution.exec_arn in sent:
                return
            sent.add(execution.exec_arn)
        try:
            publish_status_change(execution)
        except Exception:  # EventBridge delivery is asynchronous on AWS too: log, go on
            log.exception("could not publish the status change of %s", execution.exec_arn)

    BaseExecutionWorkerCommunication.terminated = terminated  # type: ignore[method-assign]
    try:
        yield
    finally:
        BaseExecutionWorkerCommunication.terminated = original  # type: ignore[method-assign]
