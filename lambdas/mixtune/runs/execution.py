"""The pipeline's state machine (Step Functions): the only code that starts executions.

The execution name is the run id, so a second start of the same run is refused by Step
Functions itself.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from mixtune.errors import retryable_aws_errors
from mixtune.runs.model import Run

Mode = Literal["train", "reevaluate"]


def execution_input(run: Run, mode: Mode = "train", **extra: Any) -> dict[str, Any]:
    """The state machine's input: the run id, where its data is, and its resolved config.

    ``mode="reevaluate"`` skips mixing and training (the schedule's re-evaluation).
    ``data_jobs`` says how a prepare or mix job is polled, should the run's data need one.
    """
    from mixtune.runs.validation import data_job_polling

    return {
        "mode": mode,
        "run_id": run.run_id,
        "dataset": run.dataset,
        "prepared_uri": run.lineage.prepared_uri,
        "config": run.config.model_dump(mode="json"),
        "data_jobs": data_job_polling(run.config),
        "prepare": {"runs_on": "lambda"},  # a run handed to a prepare job says so (Route)
        **extra,
    }


def start_execution(state_machine_arn: str, run: Run, mode: Mode = "train", **extra: Any) -> str:
    """Start (or find) the run's execution; returns its ARN."""
    import boto3

    client = boto3.client("stepfunctions")
    try:
        with retryable_aws_errors():
            reply = client.start_execution(
                stateMachineArn=state_machine_arn,
                name=run.run_id,
                input=json.dumps(execution_input(run, mode, **extra)),
            )
    except client.exceptions.ExecutionAlreadyExists:
        # Same name: it is this run's execution, started by an earlier attempt.
        head, _, machine = state_machine_arn.rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{run.run_id}"
    return str(reply["executionArn"])


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """Every event of an execution, oldest first (for the run report's state durations)."""
    import boto3

    client = boto3.client("stepfunctions")
    events: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
    with retryable_aws_errors():
        while True:
            reply = client.get_execution_history(**kwargs)
            events.extend(reply.get("events", []))
            if not reply.get("nextToken"):
                return events
            kwargs["nextToken"] = reply["nextToken"]
