"""Training backends: run the training image's entry points locally, on SageMaker or HyperPod.

Usage (what the pipeline's launch/poll handlers do)::

    from mixtune.backends import JobRef, JobSpec, get_backend

    backend = get_backend(run_config.backend, settings)  # "local" | "sagemaker" | "hyperpod"
    ref = backend.submit(JobSpec(job_name=job_name_for(run_id, "train"), entry_point="train", ...))
    state["job"] = ref.to_json()                          # plain JSON for Step Functions
    status = get_backend(ref.backend, settings).status(JobRef.from_json(state["job"]))

See docs/backends.md.
"""

from __future__ import annotations

from mixtune.backends.base import (
    ENTRY_MODULES,
    BackendError,
    BackendPermissionError,
    JobNotFoundError,
    JobRef,
    JobSpec,
    JobState,
    JobStatus,
    TrainingBackend,
    TransientError,
    backend_names,
    get_backend,
    job_name_for,
    register_backend,
    unregister_backend,
)
from mixtune.settings import Settings


# Built-in backends import their modules only when asked for, to keep Lambda cold starts short.
def _local(settings: Settings) -> TrainingBackend:
    from mixtune.backends.local import LocalBackend

    return LocalBackend.from_settings(settings)


def _sagemaker(settings: Settings) -> TrainingBackend:
    from mixtune.backends.sagemaker import SageMakerBackend

    return SageMakerBackend.from_settings(settings)


def _hyperpod(settings: Settings) -> TrainingBackend:
    from mixtune.backends.hyperpod import HyperPodBackend

    return HyperPodBackend.from_settings(settings)


register_backend("local", _local)
register_backend("sagemaker", _sagemaker)
register_backend("hyperpod", _hyperpod)

__all__ = [
    "ENTRY_MODULES",
    "BackendError",
    "BackendPermissionError",
    "JobNotFoundError",
    "JobRef",
    "JobSpec",
    "JobState",
    "JobStatus",
    "TrainingBackend",
    "TransientError",
    "backend_names",
    "get_backend",
    "job_name_for",
    "register_backend",
    "unregister_backend",
]
