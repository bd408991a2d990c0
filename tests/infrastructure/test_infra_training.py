"""What a deployed service needs to train: the training image, the job pods' identity, the
settings the backends read, the outputs a user needs, and the EventBridge form of the upload trigger."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
from aws_cdk.assertions import Match, Template

from infra.stacks import image as image_module
from infra.stacks.image import TrainingImageUnavailable
from mixtune.functions import function
from tests.infrastructure.conftest import TEST_CONTEXT, cdk_json_context, cfn_lint

PIPELINE, STORAGE, API = "MixtunePipeline", "MixtuneStorage", "MixtuneApi"


def _function_env(synthesized, name: str) -> dict:
    for resource in synthesized.resources(PIPELINE, "AWS::Lambda::Function").values():
        if resource["Properties"].get("Handler") == function(name).handler:
            return resource["Properties"]["Environment"]["Variables"]
    raise AssertionError(f"no {name} function")


def _outputs(synthesized, stack: str) -> dict[str, dict]:
    return synthesized.raw[stack]["Outputs"]


def _output(synthesized, stack: str, prefix: str) -> dict:
    (found,) = [o for key, o in _outputs(synthesized, stack).items() if key.startswith(prefix)]
    return found


# -- the training image -------------------------------------------------------------------------


def test_without_an_image_uri_the_image_is_built_from_the_dockerfile_at_deploy(synthesized):
    assets = json.loads((synthesized.outdir / f"{PIPELINE}.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    assert image["source"]["dockerFile"] == "training_image/Dockerfile"
    assert image["source"]["platform"] == "linux/amd64"
    staged = synthesized.outdir / image["source"]["directory"]
    # The staged build context holds what the Dockerfile copies, and nothing else.
    assert sorted(p.name for p in staged.iterdir()) == [
        "README.md",
        "lambdas",
        "pyproject.toml",
        "training_image",
    ]
    assert not list(staged.rglob("__pycache__"))
    uri = _function_env(synthesized, "launch_job")["MIXTUNE_TRAINING_IMAGE_URI"]
    assert "container-assets" in json.dumps(uri)  # the bootstrap asset repository, tagged by hash


def test_the_sagemaker_role_may_pull_the_built_image(synthesized):
    policies = [
        r
        for r in synthesized.resources(PIPELINE, "AWS::IAM::Policy").values()
        if any("SageMakerExecutionRole" in ref.get("Ref", "") for ref in r["Properties"].get("Roles", []))
    ]
    pulls = [
        s
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "ecr:BatchGetImage" in s["Action"] and "container-assets" in json.dumps(s["Resource"])
    ]
    assert pulls, "no pull permission on the asset repository"


def test_a_given_image_uri_is_used_as_it_is_and_nothing_is_built(build_app):
    _app, service = build_app(trainingImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/mixtune:1")
    assert service.pipeline.image.asset is None
    template = Template.from_stack(service.pipeline).to_json()
    assert "container-assets" not in json.dumps(template)
    envs = [
        r["Properties"]["Environment"]["Variables"]["MIXTUNE_TRAINING_IMAGE_URI"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "Environment" in r["Properties"]
        if "MIXTUNE_TRAINING_IMAGE_URI" in r["Properties"]["Environment"]["Variables"]
    ]
    assert set(envs) == {"123456789012.dkr.ecr.us-east-1.amazonaws.com/mixtune:1"}


def test_synth_fails_clearly_when_a_backend_needs_an_image_that_cannot_be_had(build_app, monkeypatch):
    with pytest.raises(
        TrainingImageUnavailable, match=r"trainingImageUri is not set.*buildTrainingImage is false"
    ):
        build_app(buildTrainingImage=False)
    monkeypatch.setattr(image_module, "REPO_ROOT", Path("/nonexistent"))
    with pytest.raises(TrainingImageUnavailable, match=r"training_image/Dockerfile is not in"):
        build_app()


# -- the job pods' identity ---------------------------------------------------------------------


def test_hyperpod_pods_get_the_job_role_by_pod_identity(synthesized):
    resources = synthesized.raw[PIPELINE]["Resources"]
    (association,) = synthesized.resources(PIPELINE, "AWS::EKS::PodIdentityAssociation").values()
    props = association["Properties"]
    assert (props["ClusterName"], props["Namespace"], props["ServiceAccount"]) == (
        "ml-hyperpod-eks",
        "team-a",
        "mixtune-training",
    )
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    (trust,) = resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert sorted(trust["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    assert trust["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Join"][1][-1] == ":cluster/ml-hyperpod-eks"
    statements = [
        s
        for p in synthesized.resources(PIPELINE, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"].get("Roles", [])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    actions = {
        a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert {"s3:GetObject", "s3:PutObject", "kms:Decrypt", "kms:GenerateDataKey"} <= actions
    resources_text = json.dumps([s["Resource"] for s in statements])
    assert "mixtune-work-" in resources_text and "ml-models" in resources_text
    # A prepare job (a dataset too large for Lambda, issue 14) reads the upload, and only reads.
    raw = [s for s in statements if "mixtune-raw-" in json.dumps(s["Resource"])]
    raw_actions = {a for s in raw for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert raw and raw_actions <= {"s3:GetObject", "s3:ListBucket"}


def test_the_deployed_functions_carry_the_backend_settings(synthesized):
    env = _function_env(synthesized, "launch_job")
    assert env["MIXTUNE_HYPERPOD_LAUNCHER"] == "hyperpodrun"
    assert env["MIXTUNE_HYPERPOD_SERVICE_ACCOUNT"] == "mixtune-training"
    assert env["MIXTUNE_SAGEMAKER_INTER_CONTAINER_ENCRYPTION"] == "true"
    assert env["MIXTUNE_SAGEMAKER_SUBNETS"] == "[]"
    assert isinstance(env["MIXTUNE_KMS_KEY_ARN"], dict)  # the data key's ARN, a reference


def test_vpc_subnets_and_security_groups_reach_the_functions(build_app):
    _app, service = build_app(sagemakerSubnets=["subnet-1"], sagemakerSecurityGroups=["sg-1"])
    template = Template.from_stack(service.pipeline)
    template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "MIXTUNE_SAGEMAKER_SUBNETS": '["subnet-1"]',
                        "MIXTUNE_SAGEMAKER_SECURITY_GROUPS": '["sg-1"]',
                    }
                )
            }
        },
    )


# -- outputs --------------------------------------------------------------------------------------


def test_outputs_name_what_a_user_needs_after_deploy(synthesized):
    storage = _outputs(synthesized, STORAGE)
    assert {"RawBucketName", "WorkBucketName", "RunEventsTopicArn", "DataKeyArn"} <= set(storage)
    pipeline = _outputs(synthesized, PIPELINE)
    assert "StateMachineArn" in pipeline
    for prefix in (
        "TrainingHyperPodRbacManifest",
        "TrainingHyperPodJobRoleArn",
        "TrainingSageMakerExecutionRoleArn",
        "TrainingTrainingImageUri",
        "TrainingTrainingImageRepositoryArn",
    ):
        assert _output(synthesized, PIPELINE, prefix)["Description"]
    assert "ApiUrl" in _outputs(synthesized, API)
    assert "Pod Identity" in _output(synthesized, PIPELINE, "TrainingHyperPodJobRoleArn")["Description"]


# -- the upload trigger: S3 notification (default) or EventBridge --------------------------------


def test_by_default_uploads_reach_prepare_by_s3_notification_and_not_eventbridge(synthesized):
    raw = next(
        r for k, r in synthesized.resources(STORAGE, "AWS::S3::Bucket").items() if k.startswith("RawBucket")
    )
    assert "NotificationConfiguration" not in raw["Properties"]
    rules = synthesized.resources(PIPELINE, "AWS::Events::Rule").values()
    assert not [r for r in rules if r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]]


@pytest.fixture(scope="module")
def eventbridge(tmp_path_factory):
    """The app synthesized with uploadTrigger=eventbridge (templates written for cfn-lint)."""
    from aws_cdk import App

    from infra.stacks.service import build_service

    outdir = tmp_path_factory.mktemp("cdk.out.eventbridge")
    app = App(
        context={**cdk_json_context(), **TEST_CONTEXT, "uploadTrigger": "eventbridge"}, outdir=str(outdir)
    )
    service = build_service(app)
    app.synth()
    return service, outdir


def test_eventbridge_form_routes_object_created_under_incoming_to_prepare_with_a_dead_letter_queue(
    eventbridge,
):
    _service, outdir = eventbridge
    storage = json.loads((outdir / f"{STORAGE}.template.json").read_text())
    raw = next(
        r
        for k, r in storage["Resources"].items()
        if k.startswith("RawBucket") and r["Type"] == "AWS::S3::Bucket"
    )
    assert raw["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    key_policy = next(r for r in storage["Resources"].values() if r["Type"] == "AWS::KMS::Key")["Properties"][
        "KeyPolicy"
    ]
    assert any(s.get("Principal") == {"Service": "events.amazonaws.com"} for s in key_policy["Statement"])
    pipeline = json.loads((outdir / f"{PIPELINE}.template.json").read_text())
    assert not [r for r in pipeline["Resources"].values() if r["Type"] == "Custom::S3BucketNotifications"]
    (rule,) = [
        r
        for r in pipeline["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"]["bucket"]["name"][0]["Fn::Join"][1][0] == "mixtune-raw-"
    assert pattern["detail"]["object"]["key"] == [
        {"wildcard": f"incoming/*{suffix}"} for suffix in (".jsonl", ".json", ".csv", ".parquet")
    ]
    (target,) = rule["Properties"]["Targets"]
    prepare_id = next(
        k
        for k, r in pipeline["Resources"].items()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"].get("Handler") == function("prepare").handler
    )
    assert target["Arn"] == {"Fn::GetAtt": [prepare_id, "Arn"]}
    assert "DeadLetterQueue" in target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 21600, "MaximumRetryAttempts": 2}


def test_eventbridge_form_passes_cfn_lint_and_cdk_nag(eventbridge):
    _service, outdir = eventbridge  # synth would have raised on an unacknowledged cdk-nag error
    result = cfn_lint(outdir)
    assert result.returncode == 0, result.stdout + result.stderr


def test_eventbridge_pattern_matches_the_events_the_prepare_function_parses(eventbridge):
    """The rule's pattern, tried on the EventBridge sample events of the handler tests."""
    from tests.support.events import eventbridge_object_created

    _service, outdir = eventbridge
    pipeline = json.loads((outdir / f"{PIPELINE}.template.json").read_text())
    (pattern,) = [
        r["Properties"]["EventPattern"]
        for r in pipeline["Resources"].values()
        if r["Type"] == "AWS::Events::Rule"
        and r["Properties"].get("EventPattern", {}).get("source") == ["aws.s3"]
    ]
    event = eventbridge_object_created("mixtune-raw-123456789012-us-east-1", "incoming/support.jsonl")
    assert event["source"] in pattern["source"] and event["detail-type"] in pattern["detail-type"]
    key = event["detail"]["object"]["key"]
    assert any(_wildcard(m["wildcard"], key) for m in pattern["detail"]["object"]["key"])
    assert not any(
        _wildcard(m["wildcard"], "rejected/support.jsonl") for m in pattern["detail"]["object"]["key"]
    )


def _wildcard(pattern: str, text: str) -> bool:
    return fnmatch.fnmatchcase(text, pattern)  # EventBridge's "*" also matches "/"
