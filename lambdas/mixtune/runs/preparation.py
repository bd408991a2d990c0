"""The prepare function (Lambda), as the API and the schedule reach it: the only code that
invokes it. Preparation can be long, so the invocation is asynchronous."""

from __future__ import annotations

import json

from mixtune.errors import retryable_aws_errors


def request_preparation(function_name: str, run_id: str) -> None:
    """Hand a PENDING run to the prepare function (event ``{"run_request": {"run_id"}}``)."""
    import boto3

    with retryable_aws_errors():
        boto3.client("lambda").invoke(
            FunctionName=function_name,
            InvocationType="Event",
            Payload=json.dumps({"run_request": {"run_id": run_id}}).encode(),
        )
