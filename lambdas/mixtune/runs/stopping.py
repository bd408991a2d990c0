"""The ``mark_failed`` function as ``on_failure`` reaches it: the only code that invokes it.

Stopping training jobs needs the launcher role (SageMaker jobs, the HyperPod access entry);
``on_failure`` runs with its own narrower role, so it asks ``mark_failed`` (the state
machine's own MarkFailed, which runs as the launcher role) to end the run and stop its jobs.
"""

from __future__ import annotations

import json

from mixtune.errors import TransientError, retryable_aws_errors
from mixtune.runs.model import Failure


def end_and_stop(function_name: str, run_id: str, failure: Failure) -> bool:
    """Invoke ``mark_failed`` synchronously for the run; returns whether that call ended it."""
    import boto3

    event = {"run_id": run_id, "error": {"Error": failure.error, "Cause": failure.cause}}
    with retryable_aws_errors():
        reply = boto3.client("lambda").invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    payload = json.loads(reply["Payload"].read() or b"{}")
    if reply.get("FunctionError"):
        raise TransientError(
            f"{function_name} failed: {payload.get('errorType')}: {payload.get('errorMessage')}"
        )
    return bool(payload.get("ended_now"))
