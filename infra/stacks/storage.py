"""Storage: the customer-managed key, the buckets, the tables and the topic.

Everything here is encrypted with one customer-managed KMS key (rotation on), private,
TLS-only and retained by default; other stacks receive these constructs and grant on them.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from mixtune.runs.repository import idempotency_table_definition, table_definition

from .config import InfraConfig
from .nag import acknowledge
from .names import ResourceNames

# Powertools idempotency's default TTL attribute (the keys come from mixtune.runs).
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
# Object prefixes the lifecycle rules expire.
REJECTED_PREFIX = "rejected/"
TMP_PREFIX = "tmp/"


class StorageStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.config = config
        self.names = ResourceNames(config.prefix)
        removal = RemovalPolicy.DESTROY if config.removal_policy == "destroy" else RemovalPolicy.RETAIN

        self.key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{config.prefix}-data",
            description="mixtune data: buckets, tables, topic, queues",
            enable_key_rotation=True,
            removal_policy=removal,
            policy=_key_policy(),
        )
        # CloudWatch alarms publish to the encrypted topic: the service needs the key for that.
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToUseTheTopicKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],  # in a key policy, "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": self.account}},
            )
        )
        if config.schedules or config.upload_trigger == "eventbridge":
            # EventBridge delivers undeliverable events (schedules, uploads) to the encrypted
            # dead-letter queues.
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowEventBridgeToUseTheDeadLetterQueueKey",
                    principals=[iam.ServicePrincipal("events.amazonaws.com")],
                    actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                    resources=["*"],  # in a key policy, "*" means this key
                    conditions={"StringEquals": {"aws:SourceAccount": self.account}},
                )
            )

        self.log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            # S3 server access log delivery supports only SSE-S3 on the target bucket.
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-access-logs",
                    expiration=Duration.days(365),
                    noncurrent_version_expiration=Duration.days(30),
                )
            ],
            removal_policy=removal,
        )
        acknowledge(
            self.log_bucket,
            {"AwsSolutions-S1": "This is the access-log bucket itself; logging it into itself would loop."},
        )
        self.raw_bucket = self._data_bucket("RawBucket", "raw", removal)
        self.work_bucket = self._data_bucket("WorkBucket", "work", removal)
        if config.upload_trigger == "eventbridge":
            # S3 sends every event of the bucket to EventBridge, where the pipeline's rule picks
            # "Object Created" under incoming/ (a plain bucket property: no custom resource).
            raw = self.raw_bucket.node.default_child
            assert isinstance(raw, s3.CfnBucket)
            raw.add_property_override(
                "NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled", True
            )

        # Keys and indexes come from mixtune.runs, the code that reads and writes the table.
        runs = table_definition("runs")
        self.runs_table = dynamodb.Table(
            self,
            "RunsTable",
            table_name=self.names.table("runs"),
            partition_key=_hash_key(runs),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=removal == RemovalPolicy.RETAIN,
            removal_policy=removal,
        )
        for index in runs.get("GlobalSecondaryIndexes", []):
            if index["Projection"]["ProjectionType"] != "ALL":
                raise ValueError(f"index {index['IndexName']}: only ALL projections are mapped")
            self.runs_table.add_global_secondary_index(
                index_name=index["IndexName"],
                partition_key=_hash_key(runs, index["KeySchema"]),
                sort_key=_range_key(runs, index["KeySchema"]),
            )
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            table_name=self.names.table("idempotency"),
            partition_key=_hash_key(idempotency_table_definition("idempotency")),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            # Only short-lived deduplication records: nothing to keep when the stack goes.
            removal_policy=RemovalPolicy.DESTROY,
        )

        self.topic = sns.Topic(
            self,
            "RunEventsTopic",
            display_name="mixtune run events",
            master_key=self.key,
            enforce_ssl=True,
        )
        if config.notification_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.notification_email))

        for output_id, value, description in (
            ("RawBucketName", self.raw_bucket.bucket_name, "Drop datasets under incoming/ here"),
            ("WorkBucketName", self.work_bucket.bucket_name, "Prepared data, mixes, adapters, evaluations"),
            ("RunEventsTopicArn", self.topic.topic_arn, "Run outcomes (subscribe, filter on status)"),
            ("DataKeyArn", self.key.key_arn, "The customer-managed key of every bucket, table and topic"),
        ):
            CfnOutput(self, output_id, value=value, description=description)

    def _data_bucket(self, construct_id: str, purpose: str, removal: RemovalPolicy) -> s3.Bucket:
        return s3.Bucket(
            self,
            construct_id,
            bucket_name=self.names.bucket(purpose),
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix=f"{purpose}/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-rejected",
                    prefix=REJECTED_PREFIX,
                    expiration=Duration.days(self.config.rejected_expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-tmp",
                    prefix=TMP_PREFIX,
                    expiration=Duration.days(self.config.tmp_expiry_days),
                    noncurrent_version_expiration=Duration.days(1),
                ),
                s3.LifecycleRule(
                    id="expire-old-versions",
                    noncurrent_version_expiration=Duration.days(90),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
            ],
            removal_policy=removal,
        )


# The account administers the key and lets IAM policies use it (what CDK's default `kms:*`
# statement allows), with the actions spelled out so no policy in the app grants `*`.
_KEY_ADMIN_ACTIONS = [
    "kms:Create*",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
]
_KEY_USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]


def _key_policy() -> iam.PolicyDocument:
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AccountAdministersTheKey",
                principals=[iam.AccountRootPrincipal()],
                actions=_KEY_ADMIN_ACTIONS,
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="IamPoliciesMayUseTheKey",
                principals=[iam.AccountRootPrincipal()],
                actions=_KEY_USE_ACTIONS,
                resources=["*"],
            ),
        ]
    )


_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _key(definition: dict, key_schema: list[dict] | None, key_type: str) -> dynamodb.Attribute | None:
    """A `create_table` key (HASH or RANGE) as a CDK attribute, typed by AttributeDefinitions."""
    types = {a["AttributeName"]: a["AttributeType"] for a in definition["AttributeDefinitions"]}
    for key in key_schema if key_schema is not None else definition["KeySchema"]:
        if key["KeyType"] == key_type:
            name = key["AttributeName"]
            return dynamodb.Attribute(name=name, type=_ATTRIBUTE_TYPES[types[name]])
    return None


def _hash_key(definition: dict, key_schema: list[dict] | None = None) -> dynamodb.Attribute:
    key = _key(definition, key_schema, "HASH")
    if key is None:
        raise ValueError(f"table {definition['TableName']} has no HASH key")
    return key


def _range_key(definition: dict, key_schema: list[dict] | None = None) -> dynamodb.Attribute | None:
    return _key(definition, key_schema, "RANGE")
