"""Start the pipeline's state machine for a run: the execution name is the run id, so a
second start of the same run is refused by Step Functions itself."""

from __future__ import annotations

import json
from typing import Any

from mixtune.handlers.common import as_transient
from mixtune.runs.model import Run


def execution_input(run: Run, **extra: Any) -> dict[str, Any]:
    """The state machine's input: the run id, where its data is, and its resolved config."""
    return {
        "mode": "train",  # "reevaluate": skip mixing and training (the schedule's re-evaluation)
        "run_id": run.run_id,
        "dataset": run.dataset,
        "prepared_uri": run.lineage.prepared_uri,
        "config": run.config.model_dump(mode="json"),
        **extra,
    }


def start_execution(state_machine_arn: str, run: Run, **extra: Any) -> str:
    """Start (or find) the run's execution; returns its ARN."""
    import boto3

    client = boto3.client("stepfunctions")
    try:
        reply = client.start_execution(
            stateMachineArn=state_machine_arn,
            name=run.run_id,
            input=json.dumps(execution_input(run, **extra)),
        )
    except client.exceptions.ExecutionAlreadyExists:
        # Same name, same input: it is this run's execution, started by an earlier attempt.
        head, _, machine = state_machine_arn.rpartition(":stateMachine:")
        return f"{head}:execution:{machine}:{run.run_id}"
    except Exception as exc:
        raise as_transient(exc) from exc
    return str(reply["executionArn"])


def invoke_prepare(function_name: str, run_id: str) -> None:
    """Hand a PENDING run to the prepare function, asynchronously (preparation can be long)."""
    import boto3

    try:
        boto3.client("lambda").invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps({"run_request": {"run_id": run_id}}).encode(),
        )
    except Exception as exc:
        raise as_transient(exc) from exc
