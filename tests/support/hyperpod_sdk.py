"""AWS's HyperPod SDK (PyPI ``sagemaker-hyperpod``) as the oracle of the manifest tests.

The SDK and the Kubernetes client it imports are installed without their declared dependencies
(``make venv``; the SDK pins pytest 8.3, ruff 0.6, click 8.1 and pulls the AWS CLI, Jupyter
widgets, Hydra...): the tests import only its job models, its instance table and its resource
arithmetic, and the flat-config model of ``hyperpod-pytorch-job-template``, which is what the
``hyp create hyp-pytorch-job`` command builds the job with.

``HyperPodPytorchJob.create()`` itself cannot run here: it loads a kubeconfig, calls the cluster
and sends a telemetry request. :func:`sdk_manifest` does what ``create()`` does before that call
(the same three steps, in the same order) and returns the body it would send.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INSTALL_HINT = (
    "AWS's HyperPod SDK is not installed: run `make venv` (it installs sagemaker-hyperpod and "
    "kubernetes with --no-deps)"
)


def _refuse(*_args: Any, **_kwargs: Any) -> None:
    raise AssertionError("the HyperPod SDK tried to reach a cluster or its telemetry endpoint")


@contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK's modules warn about escape sequences at import
        yield


def sdk() -> Any:
    """The SDK's modules (imported once), with every way out to the network closed."""
    try:
        with _quiet():
            from hyperpod_pytorch_job_template.v1_1 import model as template_model
            from sagemaker.hyperpod.common.telemetry import telemetry_logging
            from sagemaker.hyperpod.training import constants, hyperpod_pytorch_job, quota_allocation_util
            from sagemaker.hyperpod.training.config import hyperpod_pytorch_job_unified_config as job_models
    except ImportError as error:
        raise AssertionError(f"{INSTALL_HINT}: {error}") from error
    telemetry_logging._send_telemetry_request = _refuse
    hyperpod_pytorch_job.HyperPodPytorchJob.verify_kube_config = classmethod(_refuse)

    class Modules:
        template = template_model
        job = hyperpod_pytorch_job
        models = job_models
        instances = constants.INSTANCE_RESOURCES
        quotas = quota_allocation_util

    return Modules


def sdk_manifest(flat_config: dict[str, Any]) -> dict[str, Any]:
    """The HyperPodPyTorchJob the SDK builds from a flat job configuration (the CLI's path)."""
    modules = sdk()
    job = modules.template.PyTorchJobConfig(**flat_config).to_domain()
    # HyperPodPytorchJob.create(), up to the API call:
    spec = modules.models._HyperPodPytorchJob(**job.model_dump(by_alias=True, exclude_none=True))
    spec = modules.job.HyperPodPytorchJob.allocate_quotas_if_applicable(spec)
    if not spec.replicaSpecs[0].replicas:
        spec.replicaSpecs[0].replicas = 1
    return {
        "apiVersion": f"{modules.job.TRAINING_GROUP}/{modules.job.API_VERSION}",
        "kind": modules.job.KIND,
        "metadata": job.metadata.model_dump(exclude_none=True),
        "spec": spec.model_dump(exclude_none=True),
    }


def validated_by_sdk_models(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest read by the SDK's models of the job (unknown or misspelt fields below the
    top level are errors there) and written back; raises pydantic's ValidationError."""
    modules = sdk()
    top_level = set(modules.models._HyperPodPytorchJob.model_fields)
    unknown = set(manifest["spec"]) - top_level
    if unknown:
        raise ValueError(f"spec fields the SDK does not know: {sorted(unknown)}")
    spec = modules.models._HyperPodPytorchJob.model_validate(manifest["spec"], by_name=True, by_alias=False)
    modules.job.Metadata.model_validate(manifest["metadata"])
    return {**manifest, "spec": spec.model_dump(exclude_none=True)}
