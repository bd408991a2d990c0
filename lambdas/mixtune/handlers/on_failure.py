"""Function ``on_failure``: a run's failure the state machine could not catch. Invoked by the
EventBridge rule on the state machine's execution status (FAILED, TIMED_OUT, ABORTED) and as
the on-failure destination of the asynchronous ``prepare`` and ``schedule`` invocations; the
run ends FAILED with the cause, its jobs are stopped, and it is announced once."""

from __future__ import annotations

from typing import Any

from mixtune.observability import lambda_entry
from mixtune.runs.failures import on_failure


@lambda_entry("on_failure")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return on_failure(event).model_dump(mode="json")
