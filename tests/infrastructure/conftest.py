"""One synth of the whole CDK app per test session (jsii start-up is slow), with cdk-nag on.

The app gets cdk.json's context plus values that switch every optional resource on
(e-mail subscription, schedules, HyperPod access), and an empty dependencies layer so no
test runs pip or reaches a package index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ["CDK_VALIDATION"] = "false"  # cfn-lint covers CloudFormation's rules here

TEST_CONTEXT: dict[str, Any] = {
    "notificationEmail": "ml-team@example.com",
    "schedules": [
        {"name": "nightly", "expression": "cron(0 3 * * ? *)", "datasets": ["s3://raw/incoming/a.jsonl"]},
        {"name": "weekly-eval", "expression": "rate(7 days)", "action": "reevaluate"},
    ],
    "hyperpodClusterName": "ml-hyperpod",
    "hyperpodEksClusterName": "ml-hyperpod-eks",
    "hyperpodNamespace": "team-a",
    "modelUris": ["s3://ml-models/llama-3.1-8b/"],
    "mixtune:skipLayerBundling": True,
}


@dataclass
class Synthesized:
    service: Any  # infra.stacks.service.Service
    outdir: Path
    templates: dict[str, Any]  # stack name -> aws_cdk.assertions.Template
    raw: dict[str, dict]  # stack name -> template JSON
    failures: list[str]  # error-level findings of the validation plugins (cdk-nag)

    def resources(self, stack: str, type_name: str) -> dict[str, dict]:
        return {k: v for k, v in self.raw[stack]["Resources"].items() if v["Type"] == type_name}


def cdk_json_context() -> dict[str, Any]:
    return json.loads((REPO_ROOT / "cdk.json").read_text())["context"]


def cfn_lint(outdir: Path) -> subprocess.CompletedProcess[str]:
    """cfn-lint (W3005 ignored) on every template synthesized into ``outdir``."""
    templates = sorted(str(p) for p in outdir.glob("*.template.json"))
    return subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--ignore-checks", "W3005", "--", *templates],
        capture_output=True,
        text=True,
        timeout=300,
    )


def validation_failures(outdir: Path) -> list[str]:
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    failures = []
    for plugin in report.get("pluginReports", []):
        for violation in plugin.get("violations", []):
            if violation.get("severity", "error") != "error":
                continue
            for construct in violation.get("violatingConstructs", []):
                failures.append(
                    f"{violation['ruleName']} at {construct['constructPath']}: {violation['description']}"
                )
    return failures


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    from aws_cdk import App
    from aws_cdk.assertions import Template

    from infra.stacks.service import build_service

    outdir = tmp_path_factory.mktemp("cdk.out")
    app = App(context={**cdk_json_context(), **TEST_CONTEXT}, outdir=str(outdir))
    service = build_service(app)
    try:
        app.synth()
    except RuntimeError as error:
        failures = validation_failures(outdir)
        pytest.fail(f"synth failed: {error}\n" + "\n".join(failures), pytrace=False)
    templates = {stack.stack_name: Template.from_stack(stack) for stack in service.stacks}
    raw = {name: json.loads((outdir / f"{name}.template.json").read_text()) for name in templates}
    return Synthesized(
        service=service, outdir=outdir, templates=templates, raw=raw, failures=validation_failures(outdir)
    )


@pytest.fixture(scope="session")
def build_app():
    """Build (not synthesize) a fresh app with the test context; for tests that change it."""

    def build(**context: Any):
        from aws_cdk import App

        from infra.stacks.service import build_service

        app = App(context={**cdk_json_context(), **TEST_CONTEXT, **context})
        return app, build_service(app)

    return build
