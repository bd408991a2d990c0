"""Report links: the signer may read reports/ and nothing else; only the functions that sign
links read its key; the function that writes reports reads what they show, not the data."""

from __future__ import annotations

import fnmatch

from mixtune.functions import function
from tests.infrastructure.test_infra_iam import _as_list, _render

PIPELINE, API = "MixtunePipeline", "MixtuneApi"
WORK = "arn:aws:s3:::mixtune-work-123456789012-us-east-1"
SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mixtune-report-link-signer-??????"
KEY = "<import:MixtuneStorage:ExportsOutputFnGetAttDataKey17AFBB84ArnCE2A1BC6>"


def _only(resources: dict[str, dict]) -> tuple[str, dict]:
    assert len(resources) == 1, list(resources)
    return next(iter(resources.items()))


def _statements_of(synthesized, stack: str, principal: dict) -> list[dict]:
    statements = []
    for resource in synthesized.resources(stack, "AWS::IAM::Policy").values():
        props = resource["Properties"]
        if principal in props.get("Roles", []) + props.get("Users", []):
            statements += props["PolicyDocument"]["Statement"]
    return statements


def _grants(statements: list[dict]) -> set[tuple[str, str]]:
    return {
        (action, _render(resource))
        for s in statements
        if s["Effect"] == "Allow"
        for action in _as_list(s["Action"])
        for resource in _as_list(s["Resource"])
    }


def _role_of(synthesized, name: str) -> tuple[str, dict]:
    for stack in (PIPELINE, API):
        for props in (
            r["Properties"] for r in synthesized.resources(stack, "AWS::Lambda::Function").values()
        ):
            if props.get("Handler") == function(name).handler:
                return stack, {"Ref": props["Role"]["Fn::GetAtt"][0]}
    raise AssertionError(f"no function {name}")


def test_the_signer_is_a_user_that_may_read_reports_and_nothing_else(synthesized):
    user_id, user = _only(synthesized.resources(PIPELINE, "AWS::IAM::User"))
    assert "LoginProfile" not in user["Properties"] and "ManagedPolicyArns" not in user["Properties"]
    statements = _statements_of(synthesized, PIPELINE, {"Ref": user_id})

    assert _grants(statements) == {("s3:GetObject", f"{WORK}/reports/*"), ("kms:Decrypt", KEY)}
    (decrypt,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert _render(decrypt["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.us-east-1.amazonaws.com"


def test_the_signer_key_is_kept_in_a_secret_encrypted_with_the_data_key(synthesized):
    _, key = _only(synthesized.resources(PIPELINE, "AWS::IAM::AccessKey"))
    user_id, _ = _only(synthesized.resources(PIPELINE, "AWS::IAM::User"))
    _, secret = _only(synthesized.resources(PIPELINE, "AWS::SecretsManager::Secret"))
    assert key["Properties"]["UserName"] == {"Ref": user_id}
    props = secret["Properties"]
    assert props["Name"] == "mixtune-report-link-signer"
    assert _render(props["KmsKeyId"]) == KEY
    text = _render(props["SecretString"])
    assert '"access_key_id":"<' in text and '"secret_access_key":"<' in text and "SecretAccessKey>" in text


def test_every_function_is_told_the_signer_secret_and_only_the_signers_may_read_it(synthesized):
    signers = {"notify", "prepare", "api"}
    for name in (
        "prepare",
        "mix",
        "launch_job",
        "poll_job",
        "baseline_lookup",
        "record",
        "mark_failed",
        "notify",
        "api",
        "schedule",
    ):
        stack, role = _role_of(synthesized, name)
        granted = _grants(_statements_of(synthesized, stack, role))
        reads_secret = ("secretsmanager:GetSecretValue", SECRET) in granted
        assert reads_secret == (name in signers), name
        assert not any(a.startswith("secretsmanager:") and r != SECRET for a, r in granted), name
    for stack in (PIPELINE, API):
        for props in (
            r["Properties"] for r in synthesized.resources(stack, "AWS::Lambda::Function").values()
        ):
            if props.get("Handler", "").startswith("mixtune."):
                assert (
                    props["Environment"]["Variables"]["MIXTUNE_REPORT_SIGNER_SECRET"]
                    == "mixtune-report-link-signer"
                )


def test_the_report_writer_reads_what_reports_show_writes_reports_and_reads_execution_history(synthesized):
    stack, role = _role_of(synthesized, "notify")
    granted = _grants(_statements_of(synthesized, stack, role))
    reads = {r for a, r in granted if a == "s3:GetObject"}
    writes = {r for a, r in granted if a == "s3:PutObject"}

    assert writes == {f"{WORK}/reports/*"}
    assert reads == {
        f"{WORK}/datasets/*/report.json",
        f"{WORK}/runs/*/manifest.json",
        f"{WORK}/runs/*/metrics.json",
        f"{WORK}/runs/*/progress.jsonl",
        f"{WORK}/runs/*/eval.json",
    }
    for data in (
        "datasets/r/prepared.jsonl",
        "runs/r/mix/mixed.jsonl",
        "runs/r/train/adapter/adapter_model.safetensors",
    ):
        assert not any(fnmatch.fnmatchcase(f"{WORK}/{data}", pattern) for pattern in reads), data
    assert (
        "states:GetExecutionHistory",
        "arn:aws:states:us-east-1:123456789012:execution:mixtune-pipeline:*",
    ) in granted
    assert ("dynamodb:UpdateItem", "arn:aws:dynamodb:us-east-1:123456789012:table/mixtune-runs") in granted
