"""Pipeline: the Lambdas, the state machine, the S3 trigger, the schedules and the alarms."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from mixtune import statemachine
from mixtune.functions import ASYNC_MAX_EVENT_AGE_S, ASYNC_RETRY_ATTEMPTS, FUNCTIONS, FunctionDef, function
from mixtune.runs.failures import execution_status_pattern
from mixtune.settings import settings_environment

from .alarms import alarm_on_any
from .config import InfraConfig, ScheduleConfig
from .functions import FunctionFactory, powertools_environment, retention
from .grants import ACCESS, Targets, acknowledge_lambda_basics, grant_access
from .image import training_image
from .layer import dependencies_layer
from .nag import acknowledge
from .report_links import ReportLinkSigner
from .storage import StorageStack
from .training import TrainingIdentities

INCOMING_PREFIX = "incoming/"
INCOMING_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
# Functions that run in the API stack (their invoke permission must live beside the API).
API_FUNCTIONS = ("api",)
# Functions that run as the HyperPod launcher role: they launch, watch or stop training jobs
# (mark_failed stops every job of a failed run; on_failure asks it to).
LAUNCHER_FUNCTIONS = ("launch_job", "poll_job", "mark_failed")
# The function that hears failures the state machine cannot catch (mixtune.runs.failures).
FAILURE_FUNCTION = "on_failure"


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: InfraConfig,
        storage: StorageStack,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.storage = storage
        self.state_machine_name = f"{config.prefix}-pipeline"
        self.state_machine_arn = self.format_arn(
            service="states",
            resource="stateMachine",
            resource_name=self.state_machine_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        # Named, not generated: `api` and `schedule` invoke it by name, and so may its own settings.
        self.prepare_function_name = f"{config.prefix}-prepare"
        self.prepare_function_arn = self._function_arn(self.prepare_function_name)
        # Named too: on_failure invokes it by name to end a run and stop its jobs.
        self.mark_failed_function_name = f"{config.prefix}-mark-failed"
        self.report_signer = ReportLinkSigner(self, "ReportLinks", names=storage.names, key=storage.key)
        self.targets = Targets(
            names=storage.names,
            key=storage.key,
            topic_arn=storage.topic.topic_arn,
            state_machine_arn=self.state_machine_arn,
            prepare_function_arn=self.prepare_function_arn,
            state_machine_name=self.state_machine_name,
            report_signer_secret_arn=self.report_signer.secret_arn,
            mark_failed_function_arn=self._function_arn(self.mark_failed_function_name),
        )
        self.image = training_image(self, config)
        self.training = TrainingIdentities(
            self, "Training", config=config, targets=self.targets, image=self.image
        )
        self.factory = FunctionFactory(
            layer=dependencies_layer(self, "DependenciesLayer"),
            environment={
                **powertools_environment(config.prefix),
                **settings_environment(self._settings_values()),
            },
            config=config,
        )

        self.dead_letter_queue = self._dead_letter_queue()
        self.functions: dict[str, lambda_.Function] = {}
        # Destinations first: prepare and schedule send their failed invocations to on_failure.
        for fn in sorted(config.functions, key=lambda fn: fn.name != FAILURE_FUNCTION):
            if fn.name not in API_FUNCTIONS:
                self.functions[fn.name] = self._function(fn)

        if config.upload_trigger == "eventbridge":
            self._trigger_prepare_on_object_created_events()
        else:
            self._trigger_prepare_on_upload()
        self.state_machine = self._state_machine()
        CfnOutput(
            self,
            "StateMachineArn",
            description="The pipeline (aws stepfunctions list-executions --state-machine-arn ...)",
            value=self.state_machine.state_machine_arn,
        )
        self._schedules()
        self._execution_failures_rule()
        self.alarms = self._alarms()

    def _function_arn(self, name: str) -> str:
        return self.format_arn(
            service="lambda",
            resource="function",
            resource_name=name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )

    # -- settings ---------------------------------------------------------------------------

    def _settings_values(self) -> dict[str, Any]:
        storage, config = self.storage, self.config
        scheduled = sorted({uri for schedule in config.schedules for uri in schedule.datasets})
        return {
            "raw_bucket": storage.raw_bucket.bucket_name,
            "work_bucket": storage.work_bucket.bucket_name,
            "runs_table": storage.runs_table.table_name,
            "idempotency_table": storage.idempotency_table.table_name,
            "topic_arn": storage.topic.topic_arn,
            "state_machine_arn": self.state_machine_arn,
            "catalog_uri": config.catalog_uri
            or f"s3://{storage.work_bucket.bucket_name}/catalog/catalog.yaml",
            "default_backend": config.default_backend,
            "base_model": config.base_model,
            "training_image_uri": self.image.uri,
            "sagemaker_role_arn": self.training.sagemaker_role.role_arn,
            "hyperpod_cluster_name": config.hyperpod_cluster_name,
            "hyperpod_namespace": config.hyperpod_namespace,
            "hyperpod_launcher": config.hyperpod_launcher,
            "hyperpod_service_account": config.hyperpod_service_account,
            "hyperpod_queue": config.hyperpod_queue,
            "hyperpod_priority": config.hyperpod_priority,
            "hyperpod_checkpoint_claim": config.hyperpod_checkpoint_claim,
            "kms_key_arn": storage.key.key_arn,
            "sagemaker_subnets": list(config.sagemaker_subnets),
            "sagemaker_security_groups": list(config.sagemaker_security_groups),
            "sagemaker_inter_container_encryption": config.sagemaker_inter_container_encryption,
            "local_workdir": "/tmp/mixtune",  # Lambda's only writable folder; the local backend is unused here
            "scheduled_datasets": ",".join(scheduled),
            "prepare_function_name": self.prepare_function_name,
            "mark_failed_function_name": self.mark_failed_function_name,
            "default_run_config": config.default_run_config,
            "report_signer_secret": self.report_signer.secret_name,
            "platform": "aws",
            "allowed_backends": list(config.allowed_backends),
            "allowed_instance_types": list(config.allowed_instance_types),
            "allowed_base_models": list(config.allowed_base_models or (config.base_model,)),
            "max_node_count": config.max_node_count,
        }

    # -- functions --------------------------------------------------------------------------

    def _function(self, fn: FunctionDef) -> lambda_.Function:
        role = self.training.launcher_role if fn.name in LAUNCHER_FUNCTIONS else None
        # Asynchronous invocations (S3, EventBridge, the API's hand-over): Lambda retries a
        # failed one twice, then sends its record to the on-failure destination, which ends
        # the run FAILED and announces it; on_failure's own failures go to the queue.
        extra: dict[str, object] = {}
        if fn.on_failure or fn.name == FAILURE_FUNCTION:  # the asynchronously invoked ones
            extra = {
                "on_failure": destinations.LambdaDestination(
                    self.functions[fn.on_failure], response_only=False
                )
                if fn.on_failure
                else destinations.SqsDestination(self.dead_letter_queue),
                "retry_attempts": ASYNC_RETRY_ATTEMPTS,
                "max_event_age": Duration.seconds(ASYNC_MAX_EVENT_AGE_S),
            }
        if fn.name == "prepare":
            extra["function_name"] = self.prepare_function_name
        if fn.name == "mark_failed":
            extra["function_name"] = self.mark_failed_function_name
        handle = self.factory.create(self, fn, role=role, **extra)
        reasons = {}
        if fn.on_failure:
            target = self.functions[fn.on_failure]
            reasons[
                f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(target.node.default_child)}.Arn>:*]"
            ] = f"CDK's grant to invoke any version of the on-failure destination ({fn.on_failure})."
        elif fn.name == FAILURE_FUNCTION:
            reasons.update(
                {
                    f"AwsSolutions-IAM5[Action::{action}]": (
                        "CDK's grant to send failed events to the KMS-encrypted dead-letter queue."
                    )
                    for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*")
                }
            )
        acknowledge(handle.role, reasons)
        grant_access(handle.role, ACCESS[fn.name], self.targets)
        acknowledge_lambda_basics(handle, handle.role)
        return handle

    def _dead_letter_queue(self) -> sqs.Queue:
        """Where events end that nothing could deliver or handle: the on_failure function's own
        failed invocations and EventBridge's undeliverable events (schedules, the status rule)."""
        queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.storage.key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(
            queue, {"AwsSolutions-SQS3": "This queue is itself the dead-letter destination of failed events."}
        )
        return queue

    def _trigger_prepare_on_upload(self) -> None:
        # An imported reference keeps the notification in this stack: no storage->pipeline cycle.
        raw = s3.Bucket.from_bucket_attributes(
            self, "RawBucketRef", bucket_arn=self.storage.raw_bucket.bucket_arn
        )
        for suffix in INCOMING_SUFFIXES:
            raw.add_event_notification(
                s3.EventType.OBJECT_CREATED,
                s3n.LambdaDestination(self.functions["prepare"]),
                s3.NotificationKeyFilter(prefix=INCOMING_PREFIX, suffix=suffix),
            )
        handler = self.node.try_find_child("BucketNotificationsHandler050a0587b7544547bf325f094a3db834")
        if handler is not None:
            acknowledge(
                handler,
                {
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]": (
                        "CDK's own bucket-notification custom resource; it only writes its logs."
                    ),
                    "AwsSolutions-IAM5[Resource::*]": (
                        "CDK's bucket-notification custom resource: s3:PutBucketNotification on the "
                        "imported bucket cannot be narrowed by CDK."
                    ),
                },
            )

    def _trigger_prepare_on_object_created_events(self) -> None:
        """S3's "Object Created" events on EventBridge (the raw bucket sends them) under incoming/."""
        events.Rule(
            self,
            "UploadRule",
            description=f"mixtune: a dataset dropped under {INCOMING_PREFIX} of the raw bucket starts a run",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [self.storage.names.bucket("raw")]},
                    "object": {
                        "key": events.Match.any_of(
                            *(events.Match.wildcard(f"{INCOMING_PREFIX}*{s}") for s in INCOMING_SUFFIXES)
                        )
                    },
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.functions["prepare"],
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=2,
                    max_event_age=Duration.hours(6),
                )
            ],
        )

    # -- state machine ----------------------------------------------------------------------

    def _state_machine(self) -> sfn.StateMachine:
        definition = statemachine.load_definition()
        statemachine.check_placeholders(definition)
        substitutions = statemachine.substitutions(
            lambda fn: self.functions[fn.name].function_arn, self.storage.topic.topic_arn
        )
        log_group = logs.LogGroup(
            self,
            "PipelineLogs",
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            self,
            "Pipeline",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            tracing_enabled=True,
        )
        for fn in FUNCTIONS:
            if fn.in_state_machine:
                self.functions[fn.name].grant_invoke(machine)
        if "${TopicArn}" in definition:  # only when the ASL publishes to SNS itself
            self.storage.topic.grant_publish(machine)
        acknowledge(
            machine,
            {
                "AwsSolutions-IAM5[Resource::*]": (
                    "Step Functions log delivery and X-Ray APIs have no resource-level permissions."
                ),
                **{
                    f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(self.functions[fn.name].node.default_child)}.Arn>:*]": (
                        "Invoking any version or alias of the pipeline's own function."
                    )
                    for fn in FUNCTIONS
                    if fn.in_state_machine
                },
            },
        )
        return machine

    # -- schedules and alarms ---------------------------------------------------------------

    def _schedules(self) -> None:
        schedule_fn = self.functions["schedule"]
        for schedule in self.config.schedules:
            events.Rule(
                self,
                f"Schedule-{schedule.name}",
                description=f"mixtune schedule {schedule.name}: {schedule.expression}",
                schedule=events.Schedule.expression(schedule.expression),
                targets=[
                    targets.LambdaFunction(
                        schedule_fn,
                        event=events.RuleTargetInput.from_object(_schedule_input(schedule)),
                        dead_letter_queue=self.dead_letter_queue,
                        retry_attempts=ASYNC_RETRY_ATTEMPTS,
                        max_event_age=Duration.seconds(ASYNC_MAX_EVENT_AGE_S),
                    )
                ],
            )

    def _execution_failures_rule(self) -> events.Rule:
        """Step Functions sends "Step Functions Execution Status Change" events to the default
        bus (AWS Step Functions Developer Guide, "Step Functions events in EventBridge"): an
        execution that failed, timed out or was aborted goes to on_failure, which ends its run
        FAILED, stops its jobs and announces it (a run MarkFailed ended already is left as is)."""
        pattern = execution_status_pattern(self.state_machine_arn)
        return events.Rule(
            self,
            "ExecutionFailedRule",
            description="mixtune: executions that failed, timed out or were aborted -> on_failure",
            event_pattern=events.EventPattern(
                source=pattern["source"], detail_type=pattern["detail-type"], detail=pattern["detail"]
            ),
            targets=[
                targets.LambdaFunction(
                    self.functions[FAILURE_FUNCTION],
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=ASYNC_RETRY_ATTEMPTS,
                    max_event_age=Duration.seconds(ASYNC_MAX_EVENT_AGE_S),
                )
            ],
        )

    def _alarms(self) -> list[cloudwatch.Alarm]:
        topic = self.storage.topic
        alarms = [
            alarm_on_any(
                self,
                "PipelineFailedAlarm",
                self.state_machine.metric_failed(),
                "pipeline executions failed",
                topic,
            ),
            alarm_on_any(
                self,
                "PipelineTimedOutAlarm",
                self.state_machine.metric_timed_out(),
                "pipeline executions timed out",
                topic,
            ),
        ]
        for name, handle in self.functions.items():
            alarms.append(
                alarm_on_any(
                    self,
                    f"{function(name).camel}ErrorsAlarm",
                    handle.metric_errors(),
                    f"{name} errors",
                    topic,
                )
            )
        alarms.append(
            alarm_on_any(
                self,
                "DeadLettersAlarm",
                self.dead_letter_queue.metric_approximate_number_of_messages_visible(),
                "events dead-lettered",
                topic,
                statistic="Maximum",
            )
        )
        return alarms


def _schedule_input(schedule: ScheduleConfig) -> dict[str, object]:
    """The constant input of a rule: the fields mixtune.handlers.schedule reads at the top level."""
    payload: dict[str, object] = {"action": schedule.action}
    if schedule.datasets:
        payload["datasets"] = list(schedule.datasets)
    return payload
