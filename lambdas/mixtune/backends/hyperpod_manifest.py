"""The ``HyperPodPyTorchJob`` manifest for a job spec.

Built in two steps so it can be checked against what AWS publishes:

1. :func:`job_config` turns a :class:`JobSpec` into the flat job configuration of the
   HyperPod CLI (``hyp create hyp-pytorch-job``), in the field names of the JSON schema that the
   PyPI package ``hyperpod-pytorch-job-template`` ships (``v1_1/schema.json``);
2. :func:`build_manifest` turns that configuration into the Kubernetes object the
   HyperPod training operator reads (``sagemaker.amazonaws.com/v1``, ``HyperPodPyTorchJob``).

The tests validate step 1 against that schema and check that step 2 contains everything the
package's own manifest template renders from the same configuration.
"""

from __future__ import annotations

from typing import Any

from mixtune.backends.base import JobSpec

API_GROUP = "sagemaker.amazonaws.com"
API_VERSION = "v1"
KIND = "HyperPodPyTorchJob"
PLURAL = "hyperpodpytorchjobs"
CONTAINER_NAME = "pytorch-job-container"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_RESOURCE = "nvidia.com/gpu"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mixtune"}


def job_config(spec: JobSpec, namespace: str, image: str, launcher: str = "torchrun") -> dict[str, Any]:
    """The flat HyperPod CLI job configuration (schema vocabulary) for ``spec``."""
    gpus = spec.gpus_per_node
    procs = max(gpus, 1)
    # torchrun starts one worker per GPU on each node and rendezvouses the nodes.
    launcher_args = [f"--nnodes={spec.node_count}", f"--nproc-per-node={procs}"]
    config: dict[str, Any] = {
        "job_name": spec.job_name,
        "image": image,
        "namespace": namespace,
        "command": [launcher],
        "args": [*launcher_args, "-m", spec.module, *spec.arguments],
        # S3 locations travel as environment too (MIXTUNE_OUTPUT_URI, MIXTUNE_INPUT_<NAME>_URI).
        "environment": spec.job_environment(),
        "instance_type": spec.instance_type,
        "replica_count": spec.node_count,
        "tasks_per_node": str(procs),
        "accelerators": gpus,
        "accelerators_limit": gpus,
        "queue_name": spec.queue,
        "priority": spec.priority,
        "max_retry": spec.max_retries or None,
    }
    return {key: value for key, value in config.items() if value is not None}


def build_manifest(config: dict[str, Any], max_runtime_s: int | None = None) -> dict[str, Any]:
    """The ``HyperPodPyTorchJob`` object for a flat job configuration."""
    kueue = {}
    if config.get("queue_name"):
        kueue[QUEUE_LABEL] = config["queue_name"]
    if config.get("priority"):
        kueue[PRIORITY_LABEL] = config["priority"]
    gpus = str(config.get("accelerators", 0))
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": config["image"],
        "command": config["command"],
        "args": config["args"],
        "env": [{"name": k, "value": v} for k, v in config.get("environment", {}).items()],
        "resources": {
            "requests": {GPU_RESOURCE: gpus},
            "limits": {GPU_RESOURCE: str(config.get("accelerators_limit", gpus))},
        },
    }
    pod_spec: dict[str, Any] = {"containers": [container]}
    if config.get("instance_type"):
        pod_spec["nodeSelector"] = {INSTANCE_TYPE_LABEL: config["instance_type"]}
    if max_runtime_s:
        # Kubernetes ends pods that run past this; the job then fails with DeadlineExceeded.
        pod_spec["activeDeadlineSeconds"] = max_runtime_s
    metadata = {
        "name": config["job_name"],
        "namespace": config["namespace"],
        "labels": {**MANAGED_BY, **kueue},
    }
    spec: dict[str, Any] = {
        "nprocPerNode": config.get("tasks_per_node", "auto"),
        "replicaSpecs": [
            {
                "name": "pod",
                "replicas": config.get("replica_count", 1),
                "template": {
                    # Kueue reads the queue and priority labels on the job and on its pods.
                    "metadata": {
                        "name": config["job_name"],
                        "namespace": config["namespace"],
                        "labels": {**MANAGED_BY, **kueue},
                    },
                    "spec": pod_spec,
                },
            }
        ],
    }
    if config.get("max_retry"):
        # Auto-resume: the operator restarts the job (from its last checkpoint) up to this many
        # times after node or process failures; pods are kept for their logs.
        spec["runPolicy"] = {"cleanPodPolicy": "None", "jobMaxRetryCount": config["max_retry"]}
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}


def manifest_for(spec: JobSpec, namespace: str, image: str, launcher: str = "torchrun") -> dict[str, Any]:
    return build_manifest(job_config(spec, namespace, image, launcher), spec.max_runtime_s)


def collection_path(namespace: str) -> str:
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}"


def object_path(namespace: str, name: str) -> str:
    return f"{collection_path(namespace)}/{name}"
