"""Storage stack: encrypted, private, TLS-only buckets and tables, keyed as mixtune.runs expects."""

from __future__ import annotations

from aws_cdk.assertions import Match

from mixtune.runs.repository import idempotency_table_definition, table_definition

STACK = "MixtuneStorage"


def _bucket_with_logs(synthesized, prefix: str) -> dict:
    buckets = synthesized.resources(STACK, "AWS::S3::Bucket")
    found = [
        b
        for b in buckets.values()
        if b["Properties"].get("LoggingConfiguration", {}).get("LogFilePrefix") == prefix
    ]
    assert len(found) == 1, f"expected one bucket logging under {prefix!r}"
    return found[0]["Properties"]


def test_data_key_is_customer_managed_with_rotation(synthesized):
    synthesized.templates[STACK].has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_raw_and_work_buckets_use_the_customer_managed_key_versioning_and_no_public_access(synthesized):
    key_id = next(iter(synthesized.resources(STACK, "AWS::KMS::Key")))
    for prefix in ("raw/", "work/"):
        props = _bucket_with_logs(synthesized, prefix)
        rule = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [key_id, "Arn"]}
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert "DestinationBucketName" in props["LoggingConfiguration"]


def test_data_buckets_expire_rejected_and_temporary_objects(synthesized):
    for prefix in ("raw/", "work/"):
        rules = {
            r["Id"]: r for r in _bucket_with_logs(synthesized, prefix)["LifecycleConfiguration"]["Rules"]
        }
        assert rules["expire-rejected"]["Prefix"] == "rejected/"
        assert rules["expire-rejected"]["ExpirationInDays"] == 30
        assert rules["expire-tmp"]["Prefix"] == "tmp/"
        assert rules["expire-tmp"]["ExpirationInDays"] == 7
        assert all(r["Status"] == "Enabled" for r in rules.values())


def test_every_bucket_policy_denies_requests_without_tls(synthesized):
    buckets = synthesized.resources(STACK, "AWS::S3::Bucket")
    policies = synthesized.resources(STACK, "AWS::S3::BucketPolicy")
    covered = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                covered.add(policy["Properties"]["Bucket"]["Ref"])
    assert covered == set(buckets)


def test_runs_table_matches_the_repository_schema_on_demand_with_pitr_and_kms(synthesized):
    definition = table_definition("x")
    synthesized.templates[STACK].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "mixtune-runs",
            "KeySchema": definition["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    Match.object_like({"IndexName": index["IndexName"], "KeySchema": index["KeySchema"]})
                    for index in definition["GlobalSecondaryIndexes"]
                ]
            ),
        },
    )


def test_idempotency_table_has_powertools_key_and_ttl(synthesized):
    synthesized.templates[STACK].has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "mixtune-idempotency",
            "KeySchema": idempotency_table_definition("x")["KeySchema"],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
            "SSESpecification": {"SSEEnabled": True, "SSEType": "KMS", "KMSMasterKeyId": Match.any_value()},
        },
    )


def test_topic_is_encrypted_tls_only_and_mails_the_configured_address(synthesized):
    template = synthesized.templates[STACK]
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "ml-team@example.com"}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_data_resources_are_retained_when_the_stack_goes(synthesized):
    for type_name in ("AWS::KMS::Key", "AWS::S3::Bucket"):
        for resource in synthesized.resources(STACK, type_name).values():
            assert resource["DeletionPolicy"] == "Retain", type_name
    runs = [
        t
        for t in synthesized.resources(STACK, "AWS::DynamoDB::Table").values()
        if t["Properties"]["TableName"] == "mixtune-runs"
    ]
    assert runs[0]["DeletionPolicy"] == "Retain"


def test_key_policy_lets_alarms_and_schedule_dead_letters_use_the_key_from_this_account_only(synthesized):
    (key,) = synthesized.resources(STACK, "AWS::KMS::Key").values()
    services = {}
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        service = statement["Principal"].get("Service")
        if service:
            services[service] = statement
    assert set(services) == {"cloudwatch.amazonaws.com", "events.amazonaws.com"}
    for statement in services.values():
        assert set(statement["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
