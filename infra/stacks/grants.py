"""Least-privilege data access: one table of what each function may touch, and its statements.

Actions are listed one by one (no `*`, no `Get*`); resources are the named buckets, key
patterns and tables. Only the KMS grants of CDK keep their `GenerateDataKey*`/`ReEncrypt*`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import Aws
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import IConstruct

from mixtune import layout

from .nag import acknowledge
from .names import NAG_ACCOUNT, NAG_PARTITION, NAG_REGION, ResourceNames

Level = Literal["", "read", "read_write"]

S3_READ_OBJECTS = ("s3:GetObject",)
S3_WRITE_OBJECTS = ("s3:PutObject", "s3:AbortMultipartUpload")
S3_READ_BUCKET = ("s3:ListBucket",)
DYNAMODB_READ = ("dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem")
DYNAMODB_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
KMS_DECRYPT = ("kms:Decrypt", "kms:DescribeKey")
KMS_ENCRYPT = ("kms:Encrypt", "kms:GenerateDataKey")


@dataclass(frozen=True)
class DataAccess:
    """What one function may touch; everything else is denied by omission."""

    raw: Level = ""
    work: Level = ""
    work_keys: str = "*"  # the key pattern `work` applies to
    runs: Level = ""
    idempotency: bool = False
    publish: bool = False
    start_execution: bool = False
    invoke_prepare: bool = False  # asynchronous hand-over of a run to `prepare`
    # The run report: written when an outcome is announced (reads what the report shows,
    # writes reports/, reads the execution's history), and links to it signed with the
    # report signer's key (infra/stacks/report_links.py).
    writes_reports: bool = False
    signs_report_links: bool = False
    invoke_mark_failed: bool = False  # `on_failure` asks `mark_failed` to end a run and stop its jobs


ACCESS: dict[str, DataAccess] = {
    "prepare": DataAccess(
        raw="read",
        work="read_write",
        runs="read_write",
        idempotency=True,
        publish=True,
        start_execution=True,
        writes_reports=True,  # a rejected dataset's report
        signs_report_links=True,
    ),
    "mix": DataAccess(work="read_write", runs="read_write"),
    # After a prepare or mix job: reads its report or manifest into the run; announces a
    # dataset the prepare job rejected (with the report page and its link).
    "conclude_job": DataAccess(
        work="read", runs="read_write", publish=True, writes_reports=True, signs_report_links=True
    ),
    # launch_job records the job in the run's item; poll_job reads the job's progress.jsonl.
    "launch_job": DataAccess(work="read", work_keys="runs/*", runs="read_write"),
    "poll_job": DataAccess(work="read", work_keys="runs/*", runs="read_write"),
    "baseline_lookup": DataAccess(work="read", runs="read"),
    "record": DataAccess(work="read", runs="read_write"),
    "record_sweep": DataAccess(work="read", runs="read_write"),
    "mark_failed": DataAccess(runs="read_write"),
    "on_failure": DataAccess(
        runs="read_write", publish=True, invoke_mark_failed=True, writes_reports=True, signs_report_links=True
    ),
    # notify records the announced outcome and where the report went on the run.
    "notify": DataAccess(runs="read_write", publish=True, writes_reports=True, signs_report_links=True),
    "api": DataAccess(raw="read", runs="read_write", invoke_prepare=True, signs_report_links=True),
    "schedule": DataAccess(runs="read_write", start_execution=True, invoke_prepare=True),
}


@dataclass(frozen=True)
class Targets:
    """The resources grants point at (plain ARNs, the key and topic constructs)."""

    names: ResourceNames
    key: kms.IKey
    topic_arn: str
    state_machine_arn: str
    prepare_function_arn: str
    state_machine_name: str  # its executions' history feeds the report
    report_signer_secret_arn: str
    mark_failed_function_arn: str


def grant_bucket(role: iam.IRole, targets: Targets, purpose: str, level: Level, keys: str = "*") -> None:
    if not level:
        return
    names = targets.names
    object_actions = S3_READ_OBJECTS + (S3_WRITE_OBJECTS if level == "read_write" else ())
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(object_actions), resources=[names.bucket_arn(purpose, keys)])
    )
    listing = iam.PolicyStatement(actions=list(S3_READ_BUCKET), resources=[names.bucket_arn(purpose)])
    if keys != "*":
        listing.add_condition("StringLike", {"s3:prefix": [keys]})
    role.add_to_principal_policy(listing)
    _grant_key(role, targets.key, level)
    acknowledge(
        role,
        {
            f"AwsSolutions-IAM5[Resource::{names.nag_bucket_arn(purpose, keys)}]": (
                f"Objects of the {purpose} bucket under '{keys}': object keys are per dataset and run."
            )
        },
    )


def grant_table(role: iam.IRole, targets: Targets, purpose: str, level: Level) -> None:
    if not level:
        return
    names = targets.names
    actions = DYNAMODB_READ + (DYNAMODB_WRITE if level == "read_write" else ())
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions),
            resources=[names.table_arn(purpose), names.table_arn(purpose, "/index/*")],
        )
    )
    _grant_key(role, targets.key, level)
    acknowledge(
        role,
        {
            f"AwsSolutions-IAM5[Resource::{names.nag_table_arn(purpose, '/index/*')}]": (
                f"The {purpose} table's own secondary indexes (queries by dataset and by status)."
            )
        },
    )


def grant_access(role: iam.IRole, access: DataAccess, targets: Targets) -> None:
    """Apply one function's row of ACCESS to its role."""
    grant_bucket(role, targets, "raw", access.raw)
    grant_bucket(role, targets, "work", access.work, access.work_keys)
    grant_table(role, targets, "runs", access.runs)
    if access.idempotency:
        grant_table(role, targets, "idempotency", "read_write")
    if access.publish:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[targets.topic_arn])
        )
        _grant_key(role, targets.key, "read_write")
    if access.start_execution:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[targets.state_machine_arn])
        )
    invoked = [targets.prepare_function_arn] if access.invoke_prepare else []
    invoked += [targets.mark_failed_function_arn] if access.invoke_mark_failed else []
    if invoked:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=invoked)
        )
    if access.writes_reports:
        grant_report_writing(role, targets)
    if access.signs_report_links:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"], resources=[targets.report_signer_secret_arn]
            )
        )
        _grant_key(role, targets.key, "read")  # the secret is encrypted with the data key


def grant_report_writing(role: iam.IRole, targets: Targets) -> None:
    """Read the files a report shows (mixtune.layout.REPORT_INPUT_KEYS, no dataset text), write
    reports/, read the execution history for the state durations."""
    names = targets.names
    reports = f"{layout.REPORTS}/*"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(S3_READ_OBJECTS),
            resources=[names.bucket_arn("work", keys) for keys in layout.REPORT_INPUT_KEYS],
        )
    )
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=list(S3_WRITE_OBJECTS), resources=[names.bucket_arn("work", reports)])
    )
    executions = f"execution:{targets.state_machine_name}:*"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["states:GetExecutionHistory"],
            resources=[f"arn:{Aws.PARTITION}:states:{Aws.REGION}:{Aws.ACCOUNT_ID}:{executions}"],
        )
    )
    _grant_key(role, targets.key, "read_write")
    acknowledge(
        role,
        {
            **{
                f"AwsSolutions-IAM5[Resource::{names.nag_bucket_arn('work', keys)}]": (
                    "A file the run report shows, in any run's folder: reports, manifests, metrics, "
                    "never the data."
                )
                for keys in (*layout.REPORT_INPUT_KEYS, reports)
            },
            f"AwsSolutions-IAM5[Resource::arn:{NAG_PARTITION}:states:{NAG_REGION}:{NAG_ACCOUNT}:{executions}]": (
                "The history of any execution of the pipeline's own state machine (execution names are run ids)."
            ),
        },
    )


def _grant_key(role: iam.IRole, key: kms.IKey, level: Level) -> None:
    actions = KMS_DECRYPT + (KMS_ENCRYPT if level == "read_write" else ())
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[key.key_arn]))


def acknowledge_lambda_basics(function: IConstruct, role: iam.IRole) -> None:
    """Findings every mixtune function shares, with their reasons."""
    acknowledge(
        function,
        {
            "AwsSolutions-L1": (
                "Pinned to Python 3.12: the dependencies layer is built by pip for 3.12/arm64 and the "
                "code is tested on it; move runtime and layer together."
            )
        },
    )
    acknowledge(
        role,
        {
            "AwsSolutions-IAM5[Resource::*]": "X-Ray PutTraceSegments/PutTelemetryRecords support no resource-level permissions."
        },
    )
