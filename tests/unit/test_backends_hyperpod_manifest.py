"""The HyperPodPyTorchJob manifest, checked against what AWS publishes.

- The flat job configuration is validated against ``v1_1/schema.json`` of the PyPI package
  ``hyperpod-pytorch-job-template`` (the ``hyp`` CLI's schema), and the manifest must contain
  everything that package's Jinja template renders from it (files loaded without importing it).
- AWS's HyperPod SDK (``sagemaker-hyperpod``, see ``tests/support/hyperpod_sdk.py``) builds the
  same job from the same configuration without our resource figures (it computes cpu, memory and
  EFA devices from the instance type itself): our manifest must have every field it sets, with
  its values; and the SDK's models of the job must accept our whole manifest.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from mixtune import instances
from mixtune.backends import BackendError, JobSpec, JobState
from mixtune.backends.hyperpod import map_job_status
from mixtune.backends.hyperpod_manifest import (
    FINISHED_JOB_TTL_S,
    PodSettings,
    build_manifest,
    job_config,
    manifest_for,
)
from tests.support.hyperpod_sdk import sdk, sdk_manifest, validated_by_sdk_models
from tests.support.jobs import job_spec

SCHEMA_VERSION = "v1_1"
IMAGE = "123.dkr.ecr.us-east-1.amazonaws.com/mixtune-train:1"
POD = PodSettings(namespace="mixtune", image=IMAGE, service_account="mixtune-training")


def template_package() -> Path:
    found = importlib.util.find_spec("hyperpod_pytorch_job_template")
    if found is None or not found.submodule_search_locations:
        pytest.fail("hyperpod-pytorch-job-template is not installed (make venv)")
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
    import jinja2

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
    "environment": {"HF_HUB_OFFLINE": "1"},
    "input_uris": {"train": "s3://work/runs/7/mixed.jsonl"},
    "output_uri": "s3://work/runs/7/train",
    "checkpoint_uri": "s3://work/runs/7/train/checkpoints",
    "max_runtime_s": 7200,
    "max_retries": 3,
    "queue": "ml-team-queue",
    "priority": "training-priority",
}
full_spec = functools.partial(job_spec, FULL_JOB)
EVAL_JOB = {**FULL_JOB, "job_name": "run-7-evaluate-tuned", "entry_point": "evaluate", "node_count": 1}
# The three shapes issue 13 names: the recommended 4 x p5, one 4-GPU g5, two 8-GPU g6e.
SHAPES = [("ml.p5.48xlarge", 4), ("ml.g5.12xlarge", 1), ("ml.g6e.48xlarge", 2)]
# Our own resource figures, left out of what the SDK is given so that it computes its own.
RESOURCE_FIELDS = {"vcpu", "memory", "memory_limit", "efa", "efa_limit"}
# Where we set another value than the SDK, on purpose (the field is there all the same).
DELIBERATE = {
    # The SDK sets 0: the job object would be deleted as it ends, before the poll Lambda reads
    # its final condition (a 404 then reads as "job not found").
    ".spec.runPolicy.ttlSecondsAfterFinished": FINISHED_JOB_TTL_S,
}


def pod_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    return manifest["spec"]["replicaSpecs"][0]["template"]["spec"]


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    return pod_spec(manifest)["containers"][0]


_QUANTITY = re.compile(r"^([0-9.]+)(Gi|Mi|Ki|m)?$")
_UNITS = {None: 1, "m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def same_value(actual: Any, expected: Any) -> bool:
    """Scalars compared as text, Kubernetes quantities by value ("179" == 179.0, "256Gi" == "256.0Gi")."""
    if str(actual) == str(expected):
        return True
    a, e = _QUANTITY.match(str(actual)), _QUANTITY.match(str(expected))
    if not (a and e):
        return False
    return float(a[1]) * _UNITS[a[2]] == float(e[1]) * _UNITS[e[2]]


def contains(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where ``actual`` lacks or contradicts ``expected``. Lists of named objects (env,
    volumes, mounts) match by name; other lists item by item."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: not an object"]
        return [
            p
            for k, v in expected.items()
            for p in ([f"{path}.{k}: missing"] if k not in actual else contains(actual[k], v, f"{path}.{k}"))
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{path}: {actual!r} is not a list"]
        if expected and all(isinstance(e, dict) and "name" in e for e in expected):
            named = {a.get("name"): a for a in actual if isinstance(a, dict)}
            return [
                p
                for e in expected
                for p in (
                    [f"{path}[{e['name']}]: missing"]
                    if e["name"] not in named
                    else contains(named[e["name"]], e, f"{path}[{e['name']}]")
                )
            ]
        if len(actual) != len(expected):
            return [f"{path}: {actual!r} != {expected!r}"]
        return [
            p
            for i, (a, e) in enumerate(zip(actual, expected, strict=True))
            for p in contains(a, e, f"{path}[{i}]")
        ]
    if path in DELIBERATE:
        return (
            []
            if actual == DELIBERATE[path]
            else [f"{path}: {actual!r}, not our deliberate {DELIBERATE[path]!r}"]
        )
    return [] if same_value(actual, expected) else [f"{path}: {actual!r} != {expected!r}"]


# -- the published schema and template -------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        full_spec(),
        full_spec(node_count=1, gpus_per_node=0, queue=None, priority=None, max_retries=0),
        job_spec(EVAL_JOB),
        full_spec(instance_type="ml.custom.48xlarge", gpus_per_node=8),
    ],
    ids=["multi-node-kueue", "minimal", "evaluation", "unknown-instance-type"],
)
def test_job_config_validates_against_the_published_schema(spec: JobSpec) -> None:
    validate(job_config(spec, POD))
    validate(job_config(spec, PodSettings("mixtune", IMAGE, checkpoint_claim="fsx-checkpoints")))


def test_schema_check_would_catch_an_invalid_config() -> None:
    config = job_config(full_spec(), POD)
    with pytest.raises(jsonschema.ValidationError):
        validate({**config, "queue_name": "Not A Label"})
    with pytest.raises(jsonschema.ValidationError):
        validate({**config, "gpus": 8})


@pytest.mark.parametrize(
    "spec",
    [full_spec(), full_spec(queue=None, priority=None, max_retries=0), job_spec(EVAL_JOB)],
    ids=["full", "plain", "evaluation"],
)
def test_manifest_contains_everything_the_published_template_renders(spec: JobSpec) -> None:
    for pod in (POD, PodSettings("mixtune", IMAGE, checkpoint_claim="fsx-checkpoints")):
        config = job_config(spec, pod)
        ours = build_manifest(config, spec.max_runtime_s)
        assert contains(ours, rendered_by_published_template(config)) == []


# -- AWS's HyperPod SDK ------------------------------------------------------------------------


@pytest.mark.parametrize(("instance_type", "nodes"), SHAPES)
def test_manifest_has_every_field_the_hyperpod_sdk_sets_for_the_same_job(
    instance_type: str, nodes: int
) -> None:
    spec = full_spec(instance_type=instance_type, node_count=nodes)
    config = job_config(spec, POD)
    theirs = sdk_manifest({k: v for k, v in config.items() if k not in RESOURCE_FIELDS})
    ours = manifest_for(spec, POD)
    assert contains(ours, theirs) == []
    # What the SDK computed from the instance type alone: GPUs, EFA devices, cpu and memory.
    requests = theirs["spec"]["replicaSpecs"][0]["template"]["spec"]["containers"][0]["resources"]["requests"]
    assert {"cpu", "memory", "nvidia.com/gpu", "vpc.amazonaws.com/efa"} <= set(requests)


@pytest.mark.parametrize(("instance_type", "nodes"), SHAPES)
def test_evaluation_job_has_every_field_the_hyperpod_sdk_sets(instance_type: str, nodes: int) -> None:
    spec = job_spec(EVAL_JOB, instance_type=instance_type)
    pod = PodSettings("mixtune", IMAGE, service_account="sa", checkpoint_claim="fsx-checkpoints")
    config = job_config(spec, pod)
    assert (
        contains(
            manifest_for(spec, pod),
            sdk_manifest({k: v for k, v in config.items() if k not in RESOURCE_FIELDS}),
        )
        == []
    )


@pytest.mark.parametrize(("instance_type", "nodes"), SHAPES)
def test_the_sdk_job_models_accept_the_whole_manifest(instance_type: str, nodes: int) -> None:
    pod = PodSettings("mixtune", IMAGE, service_account="sa", checkpoint_claim="fsx-checkpoints")
    ours = manifest_for(full_spec(instance_type=instance_type, node_count=nodes), pod)
    assert contains(validated_by_sdk_models(ours), ours) == []


def test_the_sdk_model_check_would_catch_a_misspelt_field() -> None:
    ours = manifest_for(full_spec(), POD)
    container(ours)["volumeMount"] = []
    with pytest.raises(ValueError):
        validated_by_sdk_models(ours)
    with pytest.raises(ValueError, match="nprocPerNod"):
        validated_by_sdk_models({**ours, "spec": {**ours["spec"], "nprocPerNod": "8"}})


def test_instance_table_agrees_with_the_hyperpod_sdk() -> None:
    theirs = sdk().instances
    compared = 0
    for name, shape in instances.INSTANCE_TYPES.items():
        if name not in theirs:
            continue
        compared += 1
        expected = theirs[name]
        assert (shape.gpus, shape.vcpus, shape.memory_gib, shape.efa) == (
            expected["gpu"],
            expected["cpu"],
            expected["memory"],
            expected["efa"],
        ), name
    assert compared == len(instances.INSTANCE_TYPES)


def test_pod_resources_are_what_the_hyperpod_sdk_allocates_for_every_instance_type() -> None:
    quotas = sdk().quotas
    for shape in instances.INSTANCE_TYPES.values():
        for gpus in sorted({min(shape.gpus, 1), shape.gpus}):
            ours = instances.pod_resources(shape, gpus)
            if gpus:
                requests = quotas._get_resources_from_compute_quotas(shape.name, None, None, gpus)
            else:
                requests = quotas._get_resources_from_instance(shape.name, node_count=1)
                quotas._trim_resource_requests(shape.name, requests)
            limits = quotas._get_limits(shape.name, None, None, gpus or None, None, None, None)
            quotas._resolve_default_memory_values(shape.name, requests, limits)
            quotas._resolve_default_cpu_values(shape.name, requests)
            assert same_value(ours.cpu, requests["cpu"]), (shape.name, gpus)
            assert same_value(f"{ours.memory_gib}Gi", requests["memory"]), (shape.name, gpus)
            assert ours.efa == int(requests.get("vpc.amazonaws.com/efa", 0)), (shape.name, gpus)
            # and less than the node has: the rest is the kubelet's and the daemonsets'
            assert ours.cpu < shape.vcpus and ours.memory_gib < shape.memory_gib


# -- what the manifest says ---------------------------------------------------------------------


def test_training_pods_run_the_elastic_agent_over_nodes_and_every_gpu_of_the_instance() -> None:
    manifest = manifest_for(full_spec(), POD)
    assert manifest["apiVersion"] == "sagemaker.amazonaws.com/v1"
    assert manifest["kind"] == "HyperPodPyTorchJob"
    replica = manifest["spec"]["replicaSpecs"][0]
    assert replica["replicas"] == 4
    assert manifest["spec"]["nprocPerNode"] == "8"
    command = container(manifest)["command"] + container(manifest)["args"]
    assert command[:5] == ["hyperpodrun", "--nnodes=4", "--nproc-per-node=8", "-m", "mixtune_training.train"]
    assert command[5:] == full_spec().arguments
    env = {e["name"]: e["value"] for e in container(manifest)["env"]}
    assert env["MIXTUNE_INPUT_TRAIN_URI"] == "s3://work/runs/7/mixed.jsonl"
    assert env["MIXTUNE_OUTPUT_URI"] == "s3://work/runs/7/train"


def test_launcher_arguments_parse_as_the_agent_reads_them() -> None:
    """hyperpodrun is torch's elastic launcher with more options: its parser is torchrun's."""
    from torch.distributed.run import get_args_parser

    args = get_args_parser().parse_args(container(manifest_for(full_spec(), POD))["args"])
    assert (args.nnodes, args.nproc_per_node, args.module) == ("4", "8", True)
    assert args.training_script == "mixtune_training.train"
    assert args.training_script_args == full_spec().arguments


def test_pods_request_gpus_efa_cpu_and_memory_with_headroom_and_share_memory() -> None:
    manifest = manifest_for(full_spec(), POD)
    resources = container(manifest)["resources"]
    assert resources["requests"] == {
        "nvidia.com/gpu": "8",
        "vpc.amazonaws.com/efa": "32",
        "cpu": "179",  # of 192 vCPUs
        "memory": "1890Gi",  # of 2048 GiB
    }
    assert resources["limits"] == {"nvidia.com/gpu": "8", "vpc.amazonaws.com/efa": "32", "memory": "1890Gi"}
    shm = {"name": "dshm", "emptyDir": {"medium": "Memory"}}
    assert shm in pod_spec(manifest)["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container(manifest)["volumeMounts"]


def test_gpus_per_node_defaults_to_the_instance_types_gpus() -> None:
    for instance_type, gpus in [
        ("ml.p5.48xlarge", 8),
        ("ml.g5.12xlarge", 4),
        ("g6e.48xlarge", 8),
        ("ml.g5.xlarge", 1),
    ]:
        manifest = manifest_for(full_spec(instance_type=instance_type), POD)
        assert container(manifest)["resources"]["limits"]["nvidia.com/gpu"] == str(gpus), instance_type
        assert f"--nproc-per-node={gpus}" in container(manifest)["args"]


def test_an_unknown_instance_type_needs_its_gpus_and_requests_only_them() -> None:
    with pytest.raises(BackendError, match=r"unknown instance type 'ml.custom.48xlarge': set gpus_per_node"):
        manifest_for(full_spec(instance_type="ml.custom.48xlarge"), POD)
    manifest = manifest_for(full_spec(instance_type="ml.custom.48xlarge", gpus_per_node=8), POD)
    assert container(manifest)["resources"]["requests"] == {"nvidia.com/gpu": "8"}


def test_pods_run_as_the_service_account_and_the_job_has_one_deadline() -> None:
    manifest = manifest_for(full_spec(), POD)
    assert pod_spec(manifest)["serviceAccountName"] == "mixtune-training"
    assert "activeDeadlineSeconds" not in pod_spec(manifest)
    assert manifest["spec"]["runPolicy"] == {
        "cleanPodPolicy": "None",
        "ttlSecondsAfterFinished": FINISHED_JOB_TTL_S,
        "jobMaxRetryCount": 3,
        "activeDeadlineSeconds": 7200,
    }


def test_evaluation_is_one_process_on_one_gpu_of_one_node() -> None:
    manifest = manifest_for(job_spec(EVAL_JOB), POD)
    assert manifest["spec"]["replicaSpecs"][0]["replicas"] == 1
    assert manifest["spec"]["nprocPerNode"] == "1"
    assert container(manifest)["args"][:4] == [
        "--nnodes=1",
        "--nproc-per-node=1",
        "-m",
        "mixtune_training.evaluate",
    ]
    assert container(manifest)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    with pytest.raises(ValueError, match="evaluate runs as one process"):
        job_spec(EVAL_JOB, node_count=2)


def test_checkpoints_go_to_s3_or_to_the_same_path_on_a_mounted_claim() -> None:
    env = {e["name"]: e["value"] for e in container(manifest_for(full_spec(), POD))["env"]}
    assert env["MIXTUNE_CHECKPOINT_URI"] == "s3://work/runs/7/train/checkpoints"
    pod = PodSettings("mixtune", IMAGE, checkpoint_claim="fsx-checkpoints")
    manifest = manifest_for(full_spec(), pod)
    env = {e["name"]: e["value"] for e in container(manifest)["env"]}
    assert env["MIXTUNE_CHECKPOINT_URI"] == "/mnt/checkpoints/runs/7/train/checkpoints"
    assert {"name": "checkpoints", "mountPath": "/mnt/checkpoints"} in container(manifest)["volumeMounts"]
    claim = {
        "name": "checkpoints",
        "persistentVolumeClaim": {"claimName": "fsx-checkpoints", "readOnly": False},
    }
    assert claim in pod_spec(manifest)["volumes"]


def test_kueue_labels_on_the_job_and_its_pods_only_when_set() -> None:
    manifest = manifest_for(full_spec(), POD)
    for labels in (
        manifest["metadata"]["labels"],
        manifest["spec"]["replicaSpecs"][0]["template"]["metadata"]["labels"],
    ):
        assert labels["kueue.x-k8s.io/queue-name"] == "ml-team-queue"
        assert labels["kueue.x-k8s.io/priority-class"] == "training-priority"
    plain = manifest_for(full_spec(queue=None, priority=None), POD)
    assert not any(k.startswith("kueue.") for k in plain["metadata"]["labels"])


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
