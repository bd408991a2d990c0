"""The HyperPodPyTorchJob manifest, checked against AWS's published job template package.

The PyPI package ``hyperpod-pytorch-job-template`` (1.5, used by the ``hyp`` CLI of
sagemaker-hyperpod) ships ``v1_1/schema.json``, the JSON schema of the flat job configuration,
and ``v1_1/template.py``, the Jinja manifest template the CLI renders from it. Its pydantic
models import the whole sagemaker-hyperpod SDK, so these tests use the schema (validated with
jsonschema) and the template (rendered with jinja2), loading the files without importing the
package.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mixtune.backends import JobSpec, JobState
from mixtune.backends.hyperpod import map_job_status
from mixtune.backends.hyperpod_manifest import build_manifest, job_config, manifest_for
from tests.support.jobs import job_spec

SCHEMA_VERSION = "v1_1"


def template_package() -> Path:
    found = importlib.util.find_spec("hyperpod_pytorch_job_template")
    if found is None or not found.submodule_search_locations:
        pytest.skip("hyperpod-pytorch-job-template is not installed (pip install -e '.[dev]')")
    return Path(next(iter(found.submodule_search_locations))) / SCHEMA_VERSION


def published_schema() -> dict[str, Any]:
    return json.loads((template_package() / "schema.json").read_text())


def validate(config: dict[str, Any]) -> None:
    """Validate against the published schema, which types a few fields "float" (not a JSON
    Schema type): a checker that reads "float" as "number" accepts the schema as published."""
    base = jsonschema.Draft202012Validator
    checker = base.TYPE_CHECKER.redefine(
        "float", lambda _checker, value: base.TYPE_CHECKER.is_type(value, "number")
    )
    jsonschema.validators.extend(base, type_checker=checker)(published_schema()).validate(config)


def rendered_by_published_template(config: dict[str, Any]) -> dict[str, Any]:
    jinja2 = pytest.importorskip("jinja2")
    path = template_package() / "template.py"
    module_spec = importlib.util.spec_from_file_location("hyperpod_template_text", path)
    assert module_spec and module_spec.loader
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # the file only defines the TEMPLATE_CONTENT string
    return yaml.safe_load(jinja2.Template(module.TEMPLATE_CONTENT).render(**config))


FULL_JOB: dict[str, Any] = {
    "job_name": "run-7-train",
    "entry_point": "train",
    "arguments": ["--config", "s3://work/runs/7/train.json", "--output", "s3://work/runs/7/train"],
    "instance_type": "ml.p5.48xlarge",
    "node_count": 4,
    "gpus_per_node": 8,
    "environment": {"HF_HUB_OFFLINE": "1"},
    "input_uris": {"train": "s3://work/runs/7/mixed.jsonl"},
    "output_uri": "s3://work/runs/7/train",
    "max_runtime_s": 7200,
    "max_retries": 3,
    "queue": "ml-team-queue",
    "priority": "training-priority",
}
full_spec = functools.partial(job_spec, FULL_JOB)


@pytest.mark.parametrize(
    "spec",
    [full_spec(), full_spec(node_count=1, gpus_per_node=0, queue=None, priority=None, max_retries=0)],
    ids=["multi-node-kueue", "minimal"],
)
def test_job_config_validates_against_the_published_schema(spec: JobSpec) -> None:
    config = job_config(spec, "mixtune", "123.dkr.ecr.us-east-1.amazonaws.com/mixtune-train:1")
    validate(config)


def test_schema_check_would_catch_an_invalid_config() -> None:
    config = job_config(full_spec(), "mixtune", "img")
    with pytest.raises(jsonschema.ValidationError):
        validate({**config, "queue_name": "Not A Label"})
    with pytest.raises(jsonschema.ValidationError):
        validate({**config, "gpus": 8})


def contains(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks or contradicts ``expected`` (scalars compared as text)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not an object"]
        return [p for k, v in expected.items() for p in contains(actual.get(k), v, f"{path}.{k}")]
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [
            p
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for p in contains(a, e, f"{path}[{i}]")
        ]
    return [] if str(actual) == str(expected) else [f"{path}: {actual!r} != {expected!r}"]


@pytest.mark.parametrize("spec", [full_spec(), full_spec(queue=None, priority=None, max_retries=0)])
def test_manifest_contains_everything_the_published_template_renders(spec: JobSpec) -> None:
    config = job_config(spec, "mixtune", "img:1")
    ours = build_manifest(config, spec.max_runtime_s)
    assert contains(ours, rendered_by_published_template(config)) == []


def test_manifest_runs_torchrun_over_nodes_and_gpus_with_kueue_labels_and_auto_resume() -> None:
    manifest = manifest_for(full_spec(), "mixtune", "img:1")
    assert manifest["apiVersion"] == "sagemaker.amazonaws.com/v1"
    assert manifest["kind"] == "HyperPodPyTorchJob"
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "ml-team-queue"
    assert manifest["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == "training-priority"
    replica = manifest["spec"]["replicaSpecs"][0]
    assert replica["replicas"] == 4
    pod = replica["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["torchrun"]
    assert container["args"][:4] == ["--nnodes=4", "--nproc-per-node=8", "-m", "mixtune_training.train"]
    assert container["args"][4:] == full_spec().arguments
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["MIXTUNE_INPUT_TRAIN_URI"] == "s3://work/runs/7/mixed.jsonl"
    assert env["MIXTUNE_OUTPUT_URI"] == "s3://work/runs/7/train"
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "ml.p5.48xlarge"}
    assert pod["activeDeadlineSeconds"] == 7200
    assert manifest["spec"]["runPolicy"]["jobMaxRetryCount"] == 3


def test_manifest_without_queue_has_no_kueue_labels() -> None:
    manifest = manifest_for(full_spec(queue=None, priority=None), "mixtune", "img:1")
    assert not any(k.startswith("kueue.") for k in manifest["metadata"]["labels"])


def job_with(*conditions: tuple[str, str, str | None, str | None], deleting: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "j", "namespace": "mixtune"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-11-28T10:00:00Z"
    return {
        "metadata": metadata,
        "status": {
            "conditions": [
                {"type": t, "status": "True", "lastTransitionTime": ts, "reason": r, "message": m}
                for t, ts, r, m in [(c[0], c[1], c[2], c[3]) for c in conditions]
            ]
        },
    }


@pytest.mark.parametrize(
    ("job", "state", "reason"),
    [
        ({"metadata": {}}, JobState.PENDING, None),
        (job_with(("Created", "2026-01-01T00:00:00Z", "JobCreated", None)), JobState.PENDING, "JobCreated"),
        (
            job_with(
                ("Created", "2026-01-01T00:00:00Z", None, None),
                ("Running", "2026-01-01T00:01:00Z", None, None),
            ),
            JobState.RUNNING,
            None,
        ),
        (
            job_with(
                ("Running", "2026-01-01T00:01:00Z", None, None),
                ("Completed", "2026-01-01T00:09:00Z", None, None),
            ),
            JobState.SUCCEEDED,
            None,
        ),
        (
            job_with(
                ("Running", "2026-01-01T00:01:00Z", None, None),
                ("Failed", "2026-01-01T00:02:00Z", "OOMKilled", "rank 3"),
            ),
            JobState.FAILED,
            "OOMKilled: rank 3",
        ),
        (
            job_with(("Running", "2026-01-01T00:01:00Z", None, None), deleting=True),
            JobState.CANCELLED,
            "deleted",
        ),
    ],
    ids=["no-status", "created", "running", "succeeded", "failed", "deleting"],
)
def test_status_conditions_map_onto_job_states(
    job: dict[str, Any], state: JobState, reason: str | None
) -> None:
    assert map_job_status(job) == (state, reason)


def test_false_conditions_are_ignored() -> None:
    job = job_with(("Running", "2026-01-01T00:01:00Z", None, None))
    job["status"]["conditions"].append(
        {"type": "Failed", "status": "False", "lastTransitionTime": "2026-01-01T00:05:00Z"}
    )
    assert map_job_status(job) == (JobState.RUNNING, None)
