"""cdk-nag, CDK annotations, cfn-lint, the ASL validator and the template snapshots."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from aws_cdk import Acknowledgment, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match

from infra.stacks.nag import acknowledge
from infra.stacks.paths import REPO_ROOT
from mixtune.statemachine import ASL_PATH, load_definition, placeholders_in, substitute
from tests.infrastructure.conftest import cfn_lint

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE_SNAPSHOTS = os.environ.get("MIXTUNE_UPDATE_SNAPSHOTS") == "1"
ASL_VALIDATOR = REPO_ROOT / "node_modules" / ".bin" / "asl-validator"


def test_cdk_nag_finds_no_unacknowledged_error(synthesized):
    assert synthesized.failures == []


def test_cdk_nag_is_wired_into_the_app_and_fails_synth_on_a_finding(build_app):
    app, service = build_app()
    # A bucket with neither TLS enforcement nor access logs: AwsSolutions-S1 and -S10.
    s3.Bucket(service.storage, "CarelessBucket", encryption=s3.BucketEncryption.S3_MANAGED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads(Path(app.outdir, "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p["violations"]}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= rules
    paths = {
        c["constructPath"]
        for p in report["pluginReports"]
        for v in p["violations"]
        for c in v["violatingConstructs"]
    }
    assert all("CarelessBucket" in path for path in paths), "only the careless bucket is reported"


def test_every_acknowledgment_needs_a_reason(build_app):
    _app, service = build_app()
    with pytest.raises(ValueError, match="no reason"):
        acknowledge(service.storage, {"AwsSolutions-S1": "  "})
    Validations.of(service.storage).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason="ok"))


def test_no_construct_reports_an_error_annotation(synthesized):
    for stack in synthesized.service.stacks:
        errors = Annotations.from_stack(stack).find_error("*", Match.any_value())
        assert not errors, [e.entry.data for e in errors]


def test_cfn_lint_passes_on_every_synthesized_template(synthesized):
    assert len(list(synthesized.outdir.glob("*.template.json"))) == 3
    result = cfn_lint(synthesized.outdir)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ASL_VALIDATOR.exists(), reason="node_modules is not installed (npm ci)")
def test_asl_validator_accepts_the_state_machine_definition(tmp_path):
    # Placeholders become well-formed Lambda ARNs, as they are after deployment.
    text = load_definition()
    arns = {name: f"arn:aws:lambda:us-east-1:123456789012:function:{name}" for name in placeholders_in(text)}
    definition = substitute(text, arns)
    substituted = tmp_path / "pipeline.asl.json"
    substituted.write_text(definition)
    for path in (ASL_PATH, substituted):
        extra = ["--no-arn-check"] if path == ASL_PATH else []
        result = subprocess.run(
            [str(ASL_VALIDATOR), "--json-path", str(path), *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"


_HASH = re.compile(r"[0-9a-f]{64}")


def normalised(template: dict) -> dict:
    """The template without what changes on every code edit: asset hashes and the ASL body
    (its own test compares it with the file)."""
    text = _HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    result = json.loads(text)
    for resource in result.get("Resources", {}).values():
        if resource["Type"] == "AWS::StepFunctions::StateMachine":
            resource["Properties"]["DefinitionString"] = "<infra/statemachine/pipeline.asl.json>"
    return result


def test_templates_match_their_snapshots(synthesized):
    """Guards against unintended changes. Refresh on purpose with
    `MIXTUNE_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/infrastructure`."""
    mismatched = []
    for name, template in sorted(synthesized.raw.items()):
        path = SNAPSHOTS / f"{name}.template.json"
        current = normalised(template)
        if UPDATE_SNAPSHOTS:
            SNAPSHOTS.mkdir(exist_ok=True)
            path.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
            continue
        if not path.exists():
            mismatched.append(f"{path.name} is missing")
        elif json.loads(path.read_text()) != current:
            mismatched.append(name)
    assert not mismatched, (
        f"templates differ from tests/infrastructure/snapshots: {mismatched}; if intended, refresh with "
        "MIXTUNE_UPDATE_SNAPSHOTS=1"
    )


def test_snapshot_normalisation_removes_asset_hashes_but_keeps_the_rest():
    template = {
        "Resources": {
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"S3Key": "a" * 64 + ".zip"}, "Timeout": 9},
            }
        }
    }
    assert normalised(template)["Resources"]["Fn"]["Properties"] == {
        "Code": {"S3Key": "<asset-hash>.zip"},
        "Timeout": 9,
    }
