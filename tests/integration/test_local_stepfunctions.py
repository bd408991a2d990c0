"""The local cloud's Step Functions fixes, against moto's interpreter (issue 15, defect 5).

On AWS a Parallel state fails with its failed branch's error (``States.Timeout`` included), so
a Catch on the Parallel state catches it. moto refuses to re-raise a ``States.*`` name out of a
branch and fails the whole execution with ``States.Runtime``; the local cloud patches that."""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import pytest

REGION = "us-east-1"


def definition(function_arn: str) -> str:
    return json.dumps(
        {
            "StartAt": "Evaluate",
            "States": {
                "Evaluate": {
                    "Type": "Parallel",
                    "Branches": [
                        {
                            "StartAt": "Slow",
                            "States": {
                                "Slow": {
                                    "Type": "Task",
                                    "Resource": function_arn,
                                    "Parameters": {"seconds": 3},
                                    "TimeoutSeconds": 1,
                                    "End": True,
                                }
                            },
                        }
                    ],
                    "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}],
                    "End": True,
                },
                "MarkFailed": {"Type": "Pass", "End": True},
            },
        }
    )


@pytest.fixture
def sfn(aws_env: None) -> Iterator[tuple[Any, Any]]:
    import boto3
    from moto import mock_aws

    from mixtune.local.invoke import lambda_runtime

    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}), lambda_runtime("in_process"):
        iam, lam = boto3.client("iam", region_name=REGION), boto3.client("lambda", region_name=REGION)
        role = iam.create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("x.py", "")
        arn = lam.create_function(
            FunctionName="slow",
            Runtime="python3.11",
            Role=role,
            Handler="tests.support.handlers.sleep",
            Code={"ZipFile": buffer.getvalue()},
        )["FunctionArn"]
        client = boto3.client("stepfunctions", region_name=REGION)
        machine = client.create_state_machine(name="branch-timeout", definition=definition(arn), roleArn=role)
        yield client, machine["stateMachineArn"]


def run(client: Any, machine_arn: str) -> tuple[dict[str, Any], list[str]]:
    arn = client.start_execution(stateMachineArn=machine_arn)["executionArn"]
    deadline = time.monotonic() + 60
    while (reply := client.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.1)
    events = client.get_execution_history(executionArn=arn)["events"]
    return reply, [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


@pytest.mark.parametrize("patched", [True, False], ids=["local cloud", "moto as shipped"])
def test_a_timeout_inside_a_parallel_branch_is_caught_by_the_parallel_state(
    sfn: tuple[Any, Any], patched: bool
) -> None:
    from mixtune.local.stepfunctions import aws_error_names

    client, machine_arn = sfn
    with aws_error_names() if patched else nullcontext():
        execution, entered = run(client, machine_arn)
    if patched:  # what AWS does
        assert execution["status"] == "SUCCEEDED", execution
        assert entered[-1] == "MarkFailed"
        assert json.loads(execution["output"])["error"]["Error"] == "States.Timeout"
    else:  # moto's bug, which this patch exists for: if this starts failing, moto fixed it
        assert execution["status"] == "FAILED"
        assert "MarkFailed" not in entered
