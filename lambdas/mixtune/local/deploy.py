"""Deploy the service into the local cloud: the same resources as the CDK app.

Everything derives from the same sources as the CDK app: the functions from
:data:`mixtune.functions.FUNCTIONS`, their environment from :class:`mixtune.settings.Settings`,
the state machine from ``infra/statemachine/pipeline.asl.json`` with its ``${...}``
placeholders substituted, the runs table's keys from :mod:`mixtune.runs`.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from typing import Any

from mixtune.functions import (
    ASYNC_MAX_EVENT_AGE_S,
    ASYNC_RETRY_ATTEMPTS,
    FUNCTIONS,
    FunctionDef,
    function_environment,
    resized_functions,
)
from mixtune.local.aws import ACCOUNT_ID, local_client
from mixtune.local.state import Resources
from mixtune.runs import idempotency_table_definition, table_definition
from mixtune.runs.failures import execution_status_pattern
from mixtune.settings import Settings, settings_environment
from mixtune.statemachine import ASL_PATH, load_definition, substitute, substitutions

ROLE_NAME = "mixtune-local-role"
STATE_MACHINE_NAME = "mixtune-pipeline"
TOPIC_NAME = "mixtune-runs"
INCOMING_PREFIX = "incoming/"
SCHEDULE_RULE = "mixtune-schedule"
STATUS_RULE = "mixtune-execution-failed"


def function_name(fn: FunctionDef) -> str:
    return f"mixtune-{fn.name.replace('_', '-')}"


def _dummy_zip() -> bytes:
    # moto stores the code; the local runtime imports the handler from this checkout instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "mixtune handlers run from the installed package\n")
    return buffer.getvalue()


class Deployer:
    def __init__(
        self, endpoint: str, region: str, function_sizes: Mapping[str, Mapping[str, int]] | None = None
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        # Overrides of mixtune.functions' sizes, as the CDK app's `functionSizes` context.
        self.function_sizes = dict(function_sizes or {})

    def client(self, service: str) -> Any:
        return local_client(service, self.endpoint, self.region)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT_ID}:{resource}"

    def deploy(self, settings: Settings, extra_env: dict[str, str], schedule: str) -> Resources:
        s3, ddb, sns = self.client("s3"), self.client("dynamodb"), self.client("sns")
        for bucket in (settings.raw_bucket, settings.work_bucket):
            s3.create_bucket(Bucket=bucket)
        ddb.create_table(**table_definition(settings.runs_table))
        ddb.create_table(**idempotency_table_definition(settings.idempotency_table))
        topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        state_machine_arn = self.arn("states", f"stateMachine:{STATE_MACHINE_NAME}")
        settings = settings.model_copy(
            update={"topic_arn": topic_arn, "state_machine_arn": state_machine_arn}
        )
        env = {**settings_environment(settings.model_dump()), **extra_env}

        functions = self._create_functions(env)
        self._create_state_machine(functions, topic_arn)
        rules = []
        if "on_failure" in functions:  # the machinery tests deploy stand-in functions only
            rules.append(self._create_status_rule(functions["on_failure"], state_machine_arn))
        s3.put_bucket_notification_configuration(
            Bucket=settings.raw_bucket,
            NotificationConfiguration={
                "LambdaFunctionConfigurations": [
                    {
                        "Id": "incoming-to-prepare",
                        "LambdaFunctionArn": functions["prepare"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": INCOMING_PREFIX}]}},
                    }
                ]
            },
        )
        rules += self._create_schedule(functions["schedule"], schedule)
        return Resources(
            raw_bucket=settings.raw_bucket,
            work_bucket=settings.work_bucket,
            runs_table=settings.runs_table,
            idempotency_table=settings.idempotency_table,
            topic_arn=topic_arn,
            state_machine_arn=state_machine_arn,
            functions=functions,
            rules=rules,
            environment=env,
        )

    def _create_functions(self, env: dict[str, str]) -> dict[str, str]:
        iam, lam = self.client("iam"), self.client("lambda")
        role_arn = iam.create_role(
            RoleName=ROLE_NAME,
            AssumeRolePolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
        )["Role"]["Arn"]
        code = _dummy_zip()
        arns: dict[str, str] = {}
        functions = resized_functions(self.function_sizes, FUNCTIONS)
        for fn in functions:
            created = lam.create_function(
                FunctionName=function_name(fn),
                Runtime="python3.11",
                Role=role_arn,
                Handler=fn.handler,
                Code={"ZipFile": code},
                Timeout=fn.timeout_s,
                MemorySize=fn.memory_mb,
                EphemeralStorage={"Size": fn.ephemeral_mb},
                Environment={
                    "Variables": {
                        **env,
                        **function_environment(fn),
                        "POWERTOOLS_SERVICE_NAME": f"mixtune-{fn.name}",
                    }
                },
            )
            arns[fn.name] = created["FunctionArn"]
        for fn in functions:
            config: dict[str, Any] = {
                "MaximumRetryAttempts": ASYNC_RETRY_ATTEMPTS,
                "MaximumEventAgeInSeconds": ASYNC_MAX_EVENT_AGE_S,
            }
            if fn.on_failure:
                config["DestinationConfig"] = {"OnFailure": {"Destination": arns[fn.on_failure]}}
            lam.put_function_event_invoke_config(FunctionName=function_name(fn), **config)
        return arns

    def _create_state_machine(self, functions: dict[str, str], topic_arn: str) -> str:
        definition = substitute(
            load_definition(ASL_PATH), substitutions(lambda fn: functions[fn.name], topic_arn, FUNCTIONS)
        )
        return self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME,
            definition=definition,
            roleArn=self.arn("iam", f"role/{ROLE_NAME}").replace(f":{self.region}:", "::"),
        )["stateMachineArn"]

    def _create_status_rule(self, target_arn: str, state_machine_arn: str) -> str:
        events = self.client("events")
        events.put_rule(
            Name=STATUS_RULE,
            EventPattern=json.dumps(execution_status_pattern(state_machine_arn)),
            State="ENABLED",
        )
        events.put_targets(Rule=STATUS_RULE, Targets=[{"Id": "on-failure", "Arn": target_arn}])
        return STATUS_RULE

    def _create_schedule(self, target_arn: str, schedule: str) -> list[str]:
        if not schedule:
            return []
        events = self.client("events")
        events.put_rule(Name=SCHEDULE_RULE, ScheduleExpression=schedule, State="ENABLED")
        events.put_targets(Rule=SCHEDULE_RULE, Targets=[{"Id": "schedule", "Arn": target_arn}])
        return [SCHEDULE_RULE]
