"""The ``HyperPodPyTorchJob`` manifest for a job spec.

Built in two steps so it can be checked against what AWS publishes:

1. :func:`job_config` turns a :class:`JobSpec` into the flat job configuration of the
   HyperPod CLI (``hyp create hyp-pytorch-job``), in the field names of the JSON schema that the
   PyPI package ``hyperpod-pytorch-job-template`` ships (``v1_1/schema.json``);
2. :func:`build_manifest` turns that configuration into the Kubernetes object the
   HyperPod training operator reads (``sagemaker.amazonaws.com/v1``, ``HyperPodPyTorchJob``),
   adding what the flat configuration cannot say: the ``/dev/shm`` volume and the job's deadline.

The tests validate step 1 against that schema, check that step 2 contains everything the
package's manifest template renders from the same configuration, and everything AWS's HyperPod
SDK (``sagemaker-hyperpod``) puts in the job it builds for the same job (resources included),
and validate the whole manifest with that SDK's models of the job.

Each pod runs the launcher (``hyperpodrun``, the HyperPod elastic agent the training operator
talks to) with ``--nnodes`` and ``--nproc-per-node``; the operator does the rendezvous.
Evaluation and rehearsal generation run one process on one node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixtune.backends.base import BackendError, JobSpec
from mixtune.instances import find_instance_type, pod_resources, quantity

API_GROUP = "sagemaker.amazonaws.com"
API_VERSION = "v1"
KIND = "HyperPodPyTorchJob"
PLURAL = "hyperpodpytorchjobs"
CONTAINER_NAME = "pytorch-job-container"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_RESOURCE = "nvidia.com/gpu"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mixtune"}
DEFAULT_LAUNCHER = "hyperpodrun"
# NCCL and the data loaders share memory through /dev/shm; the container default is 64 MiB.
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
# Where a checkpoint PersistentVolumeClaim (FSx for Lustre) is mounted in every pod.
CHECKPOINT_VOLUME = "checkpoints"
CHECKPOINT_MOUNT = "/mnt/checkpoints"
# How long a finished job object stays: the poll Lambda must read its final condition, and
# people its pods' logs. AWS's SDK sets 0 (deleted at once), which the poll would read as gone.
FINISHED_JOB_TTL_S = 7 * 24 * 3600


@dataclass(frozen=True)
class PodSettings:
    """What the cluster decides for every job: namespace, image, launcher, identity, storage."""

    namespace: str
    image: str
    launcher: str = DEFAULT_LAUNCHER
    service_account: str = ""
    checkpoint_claim: str = ""  # a PVC mounted at CHECKPOINT_MOUNT; "" = checkpoints in S3


def checkpoint_location(spec: JobSpec, pod: PodSettings) -> str:
    """Where the job keeps its checkpoints: the spec's S3 URI, or the same path on the claim."""
    if not spec.checkpoint_uri or not pod.checkpoint_claim:
        return spec.checkpoint_uri
    path = spec.checkpoint_uri.removeprefix("s3://").split("/", 1)[-1].strip("/")
    return f"{CHECKPOINT_MOUNT}/{path}"


def job_config(spec: JobSpec, pod: PodSettings) -> dict[str, Any]:
    """The flat HyperPod CLI job configuration (schema vocabulary) for ``spec``."""
    if pod.launcher.rsplit("/", 1)[-1] == "torchrun" and spec.node_count > 1:
        # Plain torchrun gets no rendezvous endpoint here: every node would be its own rank 0.
        raise BackendError(
            f"{spec.job_name}: torchrun cannot join {spec.node_count} HyperPod nodes; use the elastic "
            f"agent (MIXTUNE_HYPERPOD_LAUNCHER={DEFAULT_LAUNCHER}) or one node"
        )
    gpus = spec.gpus()
    procs = spec.processes_per_node()
    environment = spec.job_environment(checkpoint_uri=False)
    if spec.checkpoint_uri:
        environment["MIXTUNE_CHECKPOINT_URI"] = checkpoint_location(spec, pod)
    config: dict[str, Any] = {
        "job_name": spec.job_name,
        "image": pod.image,
        "namespace": pod.namespace,
        "command": [pod.launcher],
        "args": [
            f"--nnodes={spec.node_count}",
            f"--nproc-per-node={procs}",
            "-m",
            spec.module,
            *spec.arguments,
        ],
        # S3 locations travel as environment too (MIXTUNE_OUTPUT_URI, MIXTUNE_INPUT_<NAME>_URI).
        "environment": environment,
        "instance_type": spec.instance_type,
        "replica_count": spec.node_count,
        "tasks_per_node": str(procs),
        "queue_name": spec.queue,
        "priority": spec.priority,
        "max_retry": spec.max_retries or None,
        "service_account_name": pod.service_account or None,
    }
    if gpus:
        config.update(accelerators=gpus, accelerators_limit=gpus)
    shape = find_instance_type(spec.instance_type)
    if shape is not None:
        share = pod_resources(shape, gpus)
        config.update(vcpu=share.cpu, memory=share.memory_gib, memory_limit=share.memory_gib)
        if share.efa:
            config.update(efa=share.efa, efa_limit=share.efa)
    if pod.checkpoint_claim:
        config["volume"] = [
            {
                "name": CHECKPOINT_VOLUME,
                "type": "pvc",
                "mount_path": CHECKPOINT_MOUNT,
                "claim_name": pod.checkpoint_claim,
            }
        ]
    return {key: value for key, value in config.items() if value is not None}


def _resources(config: dict[str, Any]) -> dict[str, dict[str, str]]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if config.get("accelerators"):
        requests[GPU_RESOURCE] = str(config["accelerators"])
        limits[GPU_RESOURCE] = str(config.get("accelerators_limit", config["accelerators"]))
    if config.get("vcpu"):
        requests["cpu"] = quantity(config["vcpu"])  # no CPU limit: no throttling of the loaders
    if config.get("memory"):
        requests["memory"] = f"{quantity(config['memory'])}Gi"
        limits["memory"] = f"{quantity(config.get('memory_limit', config['memory']))}Gi"
    if config.get("efa"):
        requests[EFA_RESOURCE] = str(config["efa"])
        limits[EFA_RESOURCE] = str(config.get("efa_limit", config["efa"]))
    if not requests:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = "0"
    return {"requests": requests, "limits": limits}


def build_manifest(config: dict[str, Any], max_runtime_s: int | None = None) -> dict[str, Any]:
    """The ``HyperPodPyTorchJob`` object for a flat job configuration."""
    kueue = {}
    if config.get("queue_name"):
        kueue[QUEUE_LABEL] = config["queue_name"]
    if config.get("priority"):
        kueue[PRIORITY_LABEL] = config["priority"]
    volumes: list[dict[str, Any]] = [{"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}}]
    mounts: list[dict[str, Any]] = [{"name": SHM_VOLUME, "mountPath": SHM_PATH}]
    for volume in config.get("volume", []):
        mounts.append({"name": volume["name"], "mountPath": volume["mount_path"]})
        if volume["type"] == "pvc":
            claim = {"claimName": volume["claim_name"], "readOnly": bool(volume.get("read_only", False))}
            volumes.append({"name": volume["name"], "persistentVolumeClaim": claim})
        else:
            volumes.append({"name": volume["name"], "hostPath": {"path": volume["path"]}})
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": config["image"],
        "command": config["command"],
        "args": config["args"],
        "env": [{"name": k, "value": v} for k, v in config.get("environment", {}).items()],
        "resources": _resources(config),
        "volumeMounts": mounts,
    }
    pod_spec: dict[str, Any] = {"containers": [container], "volumes": volumes}
    if config.get("instance_type"):
        pod_spec["nodeSelector"] = {INSTANCE_TYPE_LABEL: config["instance_type"]}
    if config.get("service_account_name"):
        pod_spec["serviceAccountName"] = config["service_account_name"]
    metadata = {
        "name": config["job_name"],
        "namespace": config["namespace"],
        "labels": {**MANAGED_BY, **kueue},
    }
    # Pods are kept after the job for their logs (they hold no GPUs once ended).
    run_policy: dict[str, Any] = {"cleanPodPolicy": "None", "ttlSecondsAfterFinished": FINISHED_JOB_TTL_S}
    if config.get("max_retry"):
        # Auto-resume: the operator restarts the job up to this many times after node or process
        # failures; the training entry point resumes from its newest checkpoint.
        run_policy["jobMaxRetryCount"] = config["max_retry"]
    if max_runtime_s:
        # The whole job's deadline (restarts included), not each pod's.
        run_policy["activeDeadlineSeconds"] = max_runtime_s
    spec: dict[str, Any] = {
        "nprocPerNode": config.get("tasks_per_node", "auto"),
        "replicaSpecs": [
            {
                "name": "pod",
                "replicas": config.get("replica_count", 1),
                "spares": 0,
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
        "runPolicy": run_policy,
    }
    return {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "metadata": metadata, "spec": spec}


def manifest_for(spec: JobSpec, pod: PodSettings) -> dict[str, Any]:
    return build_manifest(job_config(spec, pod), spec.max_runtime_s)


def collection_path(namespace: str) -> str:
    return f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{namespace}/{PLURAL}"


def object_path(namespace: str, name: str) -> str:
    return f"{collection_path(namespace)}/{name}"
