"""IAM: no wildcard actions anywhere, and the HyperPod launcher reaches only its job resources."""

from __future__ import annotations

import fnmatch

import yaml

from infra.stacks.k8s_rbac import HYPERPOD_API_GROUP
from infra.stacks.pipeline import LAUNCHER_FUNCTIONS
from mixtune.functions import function

STACKS = ("MixtuneStorage", "MixtunePipeline", "MixtuneApi")
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
POLICY_TYPES = {
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
    "AWS::KMS::Key": "KeyPolicy",
}


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _render(value) -> str:
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return PSEUDO.get(value["Ref"], f"<{value['Ref']}>")
    if "Fn::GetAtt" in value:
        return f"<{value['Fn::GetAtt'][0]}.{value['Fn::GetAtt'][1]}>"
    if "Fn::ImportValue" in value:
        return f"<import:{value['Fn::ImportValue']}>"
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_render(p) for p in parts)
    raise AssertionError(f"unexpected intrinsic {value!r}")


def _statements(synthesized):
    """(stack, logical id, statement) of every policy document in the app, inline ones included."""
    for stack in STACKS:
        for logical_id, resource in synthesized.raw[stack]["Resources"].items():
            field = POLICY_TYPES.get(resource["Type"])
            if field:
                for statement in resource["Properties"][field]["Statement"]:
                    yield stack, logical_id, statement
            if resource["Type"] == "AWS::IAM::Role":
                for policy in resource["Properties"].get("Policies", []):
                    for statement in policy["PolicyDocument"]["Statement"]:
                        yield stack, logical_id, statement


def test_no_policy_allows_a_wildcard_action(synthesized):
    offending = []
    for stack, logical_id, statement in _statements(synthesized):
        if statement["Effect"] != "Allow":
            continue  # the TLS-only Deny statements name s3:*/sqs:*/sns:* on purpose
        for action in _as_list(statement["Action"]):
            if action == "*" or action.endswith(":*"):
                offending.append(f"{stack}/{logical_id}: {action}")
    assert not offending


def _role_statements(synthesized, stack: str, role_id: str) -> list[dict]:
    statements = []
    for resource in synthesized.raw[stack]["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role_id} in resource["Properties"].get(
            "Roles", []
        ):
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    role = synthesized.raw[stack]["Resources"][role_id]["Properties"]
    for policy in role.get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    assert not role.get("ManagedPolicyArns"), "the launcher role has no managed policies"
    return statements


def _launcher_role_id(synthesized) -> str:
    stack = "MixtunePipeline"
    roles = set()
    for resource in synthesized.raw[stack]["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"]["Handler"] in {
            function(name).handler for name in LAUNCHER_FUNCTIONS
        }:
            roles.add(resource["Properties"]["Role"]["Fn::GetAtt"][0])
    assert len(roles) == 1, "launch_job and poll_job share the launcher role"
    (role_id,) = roles
    assert "HyperPodLauncherRole" in role_id
    return role_id


def _log_groups_of_launcher_functions(synthesized) -> set[str]:
    groups = set()
    for resource in synthesized.raw["MixtunePipeline"]["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function" and resource["Properties"]["Handler"] in {
            function(name).handler for name in LAUNCHER_FUNCTIONS
        }:
            groups.add(resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"])
    return groups


def test_launcher_role_reaches_only_its_job_resources(synthesized):
    role_id = _launcher_role_id(synthesized)
    log_groups = _log_groups_of_launcher_functions(synthesized)
    account = "arn:aws:{}:us-east-1:123456789012:"
    allowed = [
        # (action patterns, resource patterns, a condition key that must be present or None)
        (
            {"sagemaker:CreateTrainingJob", "sagemaker:AddTags"},
            {account.format("sagemaker") + "training-job/*"},
            "Null",
        ),
        (
            {"sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"},
            {account.format("sagemaker") + "training-job/*"},
            "Null",
        ),
        ({"iam:PassRole"}, {"<TrainingSageMakerExecutionRole*.Arn>"}, "StringEquals"),
        ({"sagemaker:DescribeCluster"}, {account.format("sagemaker") + "cluster/*"}, None),
        ({"eks:DescribeCluster"}, {account.format("eks") + "cluster/ml-hyperpod-eks"}, None),
        ({"s3:GetObject"}, {"arn:aws:s3:::mixtune-work-123456789012-us-east-1/runs/*"}, None),
        ({"s3:ListBucket"}, {"arn:aws:s3:::mixtune-work-123456789012-us-east-1"}, "StringLike"),
        (
            {
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:BatchGetItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            },
            {
                account.format("dynamodb") + "table/mixtune-runs",
                account.format("dynamodb") + "table/mixtune-runs/index/*",
            },
            None,
        ),
        (
            {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
            {"<import:MixtuneStorage:*DataKey*>"},
            None,
        ),
        ({"logs:CreateLogStream", "logs:PutLogEvents"}, {f"<{group}.Arn>" for group in log_groups}, None),
        ({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, {"*"}, None),
    ]
    statements = _role_statements(synthesized, "MixtunePipeline", role_id)
    assert statements
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = set(_as_list(statement["Action"]))
        resources = {_render(r) for r in _as_list(statement["Resource"])}
        matched = False
        for allowed_actions, allowed_resources, condition in allowed:
            if not actions <= allowed_actions:
                continue
            if not all(any(fnmatch.fnmatchcase(r, p) for p in allowed_resources) for r in resources):
                continue
            if condition is not None and condition not in statement.get("Condition", {}):
                continue
            matched = True
        assert matched, f"launcher role statement outside its job resources: {actions} on {resources}"
    everything = " ".join(_render(r) for s in statements for r in _as_list(s["Resource"]))
    for forbidden in ("mixtune-raw", "mixtune-idempotency", "RunEventsTopic", "states:"):
        assert forbidden not in everything


def test_launcher_role_is_mapped_into_the_cluster_through_an_access_entry(synthesized):
    role_id = _launcher_role_id(synthesized)
    synthesized.templates["MixtunePipeline"].has_resource_properties(
        "AWS::EKS::AccessEntry",
        {
            "ClusterName": "ml-hyperpod-eks",
            "PrincipalArn": {"Fn::GetAtt": [role_id, "Arn"]},
            "KubernetesGroups": ["mixtune-job-launchers"],
            "Type": "STANDARD",
        },
    )
    (entry,) = [
        r
        for r in synthesized.raw["MixtunePipeline"]["Resources"].values()
        if r["Type"] == "AWS::EKS::AccessEntry"
    ]
    assert "AccessPolicies" not in entry["Properties"], "no EKS access policy: the RBAC Role decides"


def test_rbac_manifest_output_limits_the_group_to_hyperpod_jobs_in_one_namespace(synthesized):
    outputs = synthesized.raw["MixtunePipeline"]["Outputs"]
    (manifest,) = [o["Value"] for key, o in outputs.items() if key.startswith("TrainingHyperPodRbacManifest")]
    namespace, account, role, binding = yaml.safe_load_all(manifest)
    assert namespace["kind"] == "Namespace" and namespace["metadata"]["name"] == "team-a"
    assert account["kind"] == "ServiceAccount" and account["metadata"] == {
        "name": "mixtune-training",
        "namespace": "team-a",
        "labels": {"app.kubernetes.io/managed-by": "mixtune"},
    }
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "team-a"
    (rule,) = role["rules"]
    assert rule["apiGroups"] == [HYPERPOD_API_GROUP]
    assert set(rule["resources"]) == {"hyperpodpytorchjobs", "hyperpodpytorchjobs/status"}
    assert "*" not in rule["verbs"] and "escalate" not in rule["verbs"]
    assert binding["kind"] == "RoleBinding" and binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"] == [
        {"kind": "Group", "name": "mixtune-job-launchers", "apiGroup": "rbac.authorization.k8s.io"}
    ]
    assert binding["roleRef"]["kind"] == "Role"


def test_sagemaker_execution_role_is_assumed_by_sagemaker_and_scoped_to_the_work_bucket(synthesized):
    resources = synthesized.raw["MixtunePipeline"]["Resources"]
    (role_id,) = [
        k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role" and "SageMakerExecutionRole" in k
    ]
    trust = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "sagemaker.amazonaws.com"}]
    buckets: dict[str, set[str]] = {}
    for statement in _role_statements(synthesized, "MixtunePipeline", role_id):
        for action in _as_list(statement["Action"]):
            if action.startswith("s3:"):
                for resource in _as_list(statement["Resource"]):
                    buckets.setdefault(_render(resource).split(":::")[1].split("/")[0], set()).add(action)
    assert set(buckets) == {
        "mixtune-work-123456789012-us-east-1",
        "mixtune-raw-123456789012-us-east-1",
        "ml-models",
    }
    assert buckets["ml-models"] == {"s3:GetObject", "s3:ListBucket"}  # base models: read only
    # A prepare job (a dataset too large for Lambda, issue 14) reads the upload, and only reads.
    assert buckets["mixtune-raw-123456789012-us-east-1"] == {"s3:GetObject", "s3:ListBucket"}


def test_without_hyperpod_context_there_is_no_cluster_access_at_all(build_app):
    from aws_cdk.assertions import Template

    _app, service = build_app(hyperpodClusterName="", hyperpodEksClusterName="")
    template = Template.from_stack(service.pipeline).to_json()
    types = {resource["Type"] for resource in template["Resources"].values()}
    assert "AWS::EKS::AccessEntry" not in types
    text = str(template)
    assert "eks:" not in text and "sagemaker:DescribeCluster" not in text
    assert not any(key.startswith("TrainingHyperPodRbacManifest") for key in template.get("Outputs", {}))
