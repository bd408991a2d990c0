"""SageMaker / HyperPod instance types: GPUs, vCPUs, memory, EFA devices, local storage.

One table for everything that needs the shape of a machine: the training plan of the image
(``mixtune_training.plan``: GPUs and their memory), the HyperPod manifest (the pod's GPU, EFA,
cpu and memory requests) and the SageMaker request (``VolumeKmsKeyId`` only where the volume is
EBS). Torch-free, so the Lambdas import it too.

The figures are AWS's published instance specifications; a test compares GPUs, vCPUs, memory
and EFA devices with the table of AWS's HyperPod SDK (``sagemaker-hyperpod``) and the names with
botocore's ``TrainingInstanceType``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Accelerator:
    name: str
    memory_gib: float  # as the driver reports it (nvidia-smi total memory)


H100 = Accelerator("H100 80GB", 79.6)
H200 = Accelerator("H200 141GB", 139.8)
B200 = Accelerator("B200", 178.4)
A100_40 = Accelerator("A100 40GB", 39.4)
A100_80 = Accelerator("A100 80GB", 79.2)
A10G = Accelerator("A10G", 22.5)
L4 = Accelerator("L4", 22.5)
L40S = Accelerator("L40S", 44.5)


@dataclass(frozen=True)
class InstanceType:
    name: str
    gpus: int
    accelerator: Accelerator | None
    vcpus: int
    memory_gib: int
    efa: int  # EFA network devices a pod can request (vpc.amazonaws.com/efa)
    # NVMe instance storage: SageMaker mounts it instead of an EBS volume, encrypted by the
    # hardware, and refuses a VolumeKmsKeyId for it.
    instance_storage: bool


class UnknownInstanceType(ValueError):
    """An instance type the table does not know."""


def _family(
    prefix: str,
    accelerator: Accelerator | None,
    sizes: dict[str, tuple[int, int, int, int]],
    instance_storage: bool,
) -> dict[str, InstanceType]:
    """``sizes``: size -> (GPUs, vCPUs, memory GiB, EFA devices)."""
    return {
        f"{prefix}.{size}": InstanceType(
            f"{prefix}.{size}", gpus, accelerator if gpus else None, vcpus, memory, efa, instance_storage
        )
        for size, (gpus, vcpus, memory, efa) in sizes.items()
    }


# g5 and g6 share their sizes: 1 GPU up to 16xlarge (EFA from 8xlarge), 4 on 12x/24xlarge, 8 on 48xlarge.
_G_SIZES = {
    "xlarge": (1, 4, 16, 0),
    "2xlarge": (1, 8, 32, 0),
    "4xlarge": (1, 16, 64, 0),
    "8xlarge": (1, 32, 128, 1),
    "16xlarge": (1, 64, 256, 1),
    "12xlarge": (4, 48, 192, 1),
    "24xlarge": (4, 96, 384, 1),
    "48xlarge": (8, 192, 768, 1),
}

INSTANCE_TYPES: dict[str, InstanceType] = {
    **_family("ml.p5", H100, {"48xlarge": (8, 192, 2048, 32)}, True),
    **_family("ml.p5e", H200, {"48xlarge": (8, 192, 2048, 32)}, True),
    **_family("ml.p5en", H200, {"48xlarge": (8, 192, 2048, 16)}, True),
    **_family("ml.p6-b200", B200, {"48xlarge": (8, 192, 2048, 8)}, True),
    **_family("ml.p4d", A100_40, {"24xlarge": (8, 96, 1152, 4)}, True),
    **_family("ml.p4de", A100_80, {"24xlarge": (8, 96, 1152, 4)}, True),
    **_family("ml.g5", A10G, _G_SIZES, True),
    **_family("ml.g6", L4, _G_SIZES, True),
    **_family(
        "ml.g6e",
        L40S,
        {
            "xlarge": (1, 4, 32, 0),
            "2xlarge": (1, 8, 64, 0),
            "4xlarge": (1, 16, 128, 0),
            "8xlarge": (1, 32, 256, 1),
            "16xlarge": (1, 64, 512, 1),
            "12xlarge": (4, 48, 384, 1),
            "24xlarge": (4, 96, 768, 2),
            "48xlarge": (8, 192, 1536, 4),
        },
        True,
    ),
    # CPU instances (EBS volumes): the local backend's kind of machine, for small evaluations.
    **_family(
        "ml.m5",
        None,
        {
            "large": (0, 2, 8, 0),
            "xlarge": (0, 4, 16, 0),
            "2xlarge": (0, 8, 32, 0),
            "4xlarge": (0, 16, 64, 0),
            "12xlarge": (0, 48, 192, 0),
            "24xlarge": (0, 96, 384, 0),
        },
        False,
    ),
    **_family(
        "ml.c5",
        None,
        {
            "xlarge": (0, 4, 8, 0),
            "2xlarge": (0, 8, 16, 0),
            "4xlarge": (0, 16, 32, 0),
            "9xlarge": (0, 36, 72, 0),
            "18xlarge": (0, 72, 144, 0),
        },
        False,
    ),
}


def canonical_name(name: str) -> str:
    """``p5.48xlarge`` and ``ml.p5.48xlarge`` name the same type."""
    return name if name.startswith("ml.") else f"ml.{name}"


def find_instance_type(name: str) -> InstanceType | None:
    return INSTANCE_TYPES.get(canonical_name(name))


def instance_type(name: str) -> InstanceType:
    found = find_instance_type(name)
    if found is None:
        raise UnknownInstanceType(
            f"unknown instance type {name!r}; known: {', '.join(sorted(INSTANCE_TYPES))}"
        )
    return found


# -- what a pod may request on a node ---------------------------------------------------------


def _tiered(amount: float, tiers: tuple[tuple[float, float], ...], rest: float) -> float:
    """``sum(rate x part)`` over consecutive parts of ``amount``: ``tiers`` are (size, rate)."""
    reserved, left = 0.0, amount
    for size, rate in tiers:
        part = min(size, left)
        reserved += part * rate
        left -= part
        if left <= 0:
            return reserved
    return reserved + left * rest


def reserved_cpu(vcpus: int) -> float:
    """vCPUs a node keeps for the kubelet, the system and the daemonsets (HyperPod's health
    agents, device plugins, log and metric collectors): 0.1 plus 30 % of the first core, 15 %
    of the second, 10 % of the next two and 6 % of the rest. The same rule as AWS's HyperPod SDK
    (``sagemaker-hyperpod``) uses when it sizes a job's pods; a test holds the two together."""
    return 0.1 + _tiered(vcpus, ((1, 0.30), (1, 0.15), (2, 0.10)), 0.06)


def reserved_memory_gib(memory_gib: int) -> float:
    """Memory a node keeps for the same: 0.5 GiB plus 30 % of the first 4 GiB, 25 % of the
    next 4, 20 % of the next 8, 17 % of the next 112 and 7 % of the rest (the HyperPod SDK's rule)."""
    return 0.5 + _tiered(memory_gib, ((4, 0.30), (4, 0.25), (8, 0.20), (112, 0.17)), 0.07)


@dataclass(frozen=True)
class PodResources:
    """A pod's share of one node: its GPUs, that share of the vCPUs and memory (at most what the
    node can give after its reservation), and every EFA device of the node."""

    gpus: int
    cpu: float
    memory_gib: float
    efa: int


def pod_resources(instance: InstanceType, gpus: int) -> PodResources:
    """What a pod using ``gpus`` GPUs of ``instance`` requests; all of a GPU-less node's share."""
    if gpus > instance.gpus:
        raise ValueError(f"{instance.name} has {instance.gpus} GPU(s); {gpus} requested")
    share = gpus / instance.gpus if instance.gpus and gpus else 1.0
    allocatable_cpu = math.floor(instance.vcpus - reserved_cpu(instance.vcpus))
    allocatable_memory = math.floor(instance.memory_gib - reserved_memory_gib(instance.memory_gib))
    return PodResources(
        gpus=gpus,
        cpu=min(share * instance.vcpus, allocatable_cpu),
        memory_gib=min(share * instance.memory_gib, allocatable_memory),
        efa=instance.efa if gpus else 0,
    )


def quantity(value: float) -> str:
    """A Kubernetes quantity: ``24``, ``1890``, ``12.5``."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
