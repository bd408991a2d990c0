"""The ``hyperpod`` backend: a ``HyperPodPyTorchJob`` on a SageMaker HyperPod cluster (EKS).

It talks to the cluster's Kubernetes API directly: ``sagemaker:DescribeCluster`` names the EKS
cluster, ``eks:DescribeCluster`` gives its endpoint and CA, and an STS-presigned token
(:mod:`mixtune.backends.eks_token`) authenticates the Lambda role, which the cluster's access
entry maps to a namespace-scoped role (create/get/delete ``hyperpodpytorchjobs`` only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from mixtune.backends import hyperpod_manifest as manifests
from mixtune.backends.base import (
    BackendError,
    BackendPermissionError,
    JobNotFoundError,
    JobRef,
    JobSpec,
    JobState,
    JobStatus,
    TransientError,
    check_ref,
    read_progress,
)
from mixtune.backends.eks_token import eks_token
from mixtune.backends.kube import KubeApiError, KubeClient
from mixtune.settings import Settings

NAME = "hyperpod"
# Condition types of the training operator's job status, by what they mean for us.
_SUCCEEDED = {"Completed", "Succeeded"}
_FAILED = {"Failed"}
_RUNNING = {"Running", "PodsRunning", "Restarting", "Resuming"}
_PENDING = {"Created", "Queued", "Pending", "Suspended", "PodsPending"}
_CLUSTER_CACHE_S = 300


@dataclass(frozen=True)
class EksCluster:
    name: str
    endpoint: str
    ca_data: str


_cluster_cache: dict[str, tuple[float, EksCluster]] = {}


def resolve_eks_cluster(hyperpod_cluster: str, session: Any = None) -> EksCluster:
    """The EKS cluster that orchestrates HyperPod cluster ``hyperpod_cluster`` (cached 5 min)."""
    cached = _cluster_cache.get(hyperpod_cluster)
    if cached and time.monotonic() - cached[0] < _CLUSTER_CACHE_S:
        return cached[1]
    import boto3

    session = session or boto3.session.Session()
    action = f"describe HyperPod cluster {hyperpod_cluster!r}"
    try:
        described = session.client("sagemaker").describe_cluster(ClusterName=hyperpod_cluster)
        eks_arn = described.get("Orchestrator", {}).get("Eks", {}).get("ClusterArn")
        if not eks_arn:
            raise BackendError(f"HyperPod cluster {hyperpod_cluster!r} is not orchestrated by EKS")
        eks_name = eks_arn.rsplit("/", 1)[-1]
        action = f"describe EKS cluster {eks_name!r}"
        eks = session.client("eks").describe_cluster(name=eks_name)["cluster"]
    except ClientError as error:
        raise _translate_aws(error, action) from error
    except BotoCoreError as error:
        raise TransientError(f"{action}: {error}") from error
    cluster = EksCluster(eks_name, eks["endpoint"], eks.get("certificateAuthority", {}).get("data", ""))
    _cluster_cache[hyperpod_cluster] = (time.monotonic(), cluster)
    return cluster


class HyperPodBackend:
    name = NAME

    def __init__(
        self,
        cluster_name: str,
        namespace: str,
        image_uri: str = "",
        launcher: str = manifests.DEFAULT_LAUNCHER,
        session: Any = None,
        service_account: str = "",
        checkpoint_claim: str = "",
    ) -> None:
        self.cluster_name = cluster_name
        self.namespace = namespace
        self.image_uri = image_uri
        self.launcher = launcher
        self.service_account = service_account
        self.checkpoint_claim = checkpoint_claim
        self._session = session

    @classmethod
    def from_settings(cls, settings: Settings) -> HyperPodBackend:
        return cls(
            settings.hyperpod_cluster_name,
            settings.hyperpod_namespace,
            settings.training_image_uri,
            launcher=settings.hyperpod_launcher,
            service_account=settings.hyperpod_service_account,
            checkpoint_claim=settings.hyperpod_checkpoint_claim,
        )

    def manifest(self, spec: JobSpec) -> dict[str, Any]:
        image = spec.image_uri or self.image_uri
        if not image:
            raise BackendError("hyperpod backend: no image (JobSpec.image_uri or MIXTUNE_TRAINING_IMAGE_URI)")
        pod = manifests.PodSettings(
            namespace=self.namespace,
            image=image,
            launcher=self.launcher,
            service_account=self.service_account,
            checkpoint_claim=self.checkpoint_claim,
        )
        return manifests.manifest_for(spec, pod)

    def submit(self, spec: JobSpec) -> JobRef:
        manifest = self.manifest(spec)
        cluster, client = self._client()
        ref = JobRef(
            backend=NAME,
            id=spec.job_name,
            data={
                "cluster": self.cluster_name,
                "eks_cluster": cluster.name,
                "namespace": self.namespace,
                "output_uri": spec.output_uri,
            },
        )
        try:
            client.create(manifests.collection_path(self.namespace), manifest)
        except KubeApiError as error:
            if error.status == 409:
                return ref  # AlreadyExists: a repeated submit of the same job
            if error.status == 404:  # the collection itself is missing, not a job
                raise BackendError(
                    f"create job {spec.job_name!r}: the cluster does not serve {manifests.KIND} in namespace "
                    f"{self.namespace!r} of HyperPod cluster {self.cluster_name!r}: is the HyperPod training "
                    f"operator installed and the namespace there? ({error.message})"
                ) from error
            raise self._translate(error, f"create job {spec.job_name!r}") from error
        return ref

    def status(self, ref: JobRef) -> JobStatus:
        check_ref(ref, NAME)
        _, client = self._client(ref)
        namespace = ref.data.get("namespace", self.namespace)
        try:
            job = client.get(manifests.object_path(namespace, ref.id))
        except KubeApiError as error:
            raise self._translate(error, f"read job {ref.id!r}", namespace) from error
        state, reason = map_job_status(job)
        return JobStatus(state=state, reason=reason, progress=read_progress(ref.data.get("output_uri", "")))

    def cancel(self, ref: JobRef) -> None:
        check_ref(ref, NAME)
        _, client = self._client(ref)
        namespace = ref.data.get("namespace", self.namespace)
        try:
            client.delete(manifests.object_path(namespace, ref.id))
        except KubeApiError as error:
            if error.status == 404:
                return  # already gone
            raise self._translate(error, f"delete job {ref.id!r}", namespace) from error

    def _client(self, ref: JobRef | None = None) -> tuple[EksCluster, KubeClient]:
        hyperpod_cluster = (ref.data.get("cluster") if ref else None) or self.cluster_name
        if not hyperpod_cluster:
            raise BackendError("hyperpod backend: no cluster name (MIXTUNE_HYPERPOD_CLUSTER_NAME)")
        cluster = resolve_eks_cluster(hyperpod_cluster, self._session)
        client = KubeClient(cluster.endpoint, lambda: eks_token(cluster.name, self._session), cluster.ca_data)
        return cluster, client

    def _translate(self, error: KubeApiError, action: str, namespace: str | None = None) -> BackendError:
        where = f"namespace {namespace or self.namespace!r} of HyperPod cluster {self.cluster_name!r}"
        if error.status in (401, 403):
            hint = (
                "the token was rejected: is the caller's role an access entry of the EKS cluster?"
                if error.status == 401
                else "the caller's Kubernetes role may not do this: it needs create/get/delete on "
                "hyperpodpytorchjobs.sagemaker.amazonaws.com there"
            )
            return BackendPermissionError(
                f"{action} in {where}: {error.reason} (HTTP {error.status}): {hint}"
            )
        if error.status == 404:
            return JobNotFoundError(f"{action} in {where}: not found ({error.message})")
        if error.status == 0 or error.status == 429 or error.status >= 500:
            return TransientError(f"{action} in {where}: {error}")
        return BackendError(f"{action} in {where}: {error}")


def map_job_status(job: dict[str, Any]) -> tuple[JobState, str | None]:
    """Our state for a HyperPodPyTorchJob object, from its ``status.conditions``.

    A terminal condition (Completed/Succeeded, Failed) wins over any other; otherwise the most
    recent true condition decides (Running/Restarting: RUNNING; Created/Queued...: PENDING).
    """
    if job.get("metadata", {}).get("deletionTimestamp"):
        return JobState.CANCELLED, "deleted"
    conditions = [c for c in job.get("status", {}).get("conditions") or [] if str(c.get("status")) == "True"]
    for condition in conditions:
        if condition.get("type") in _FAILED:
            reason = condition.get("reason") or "Failed"
            message = condition.get("message")
            return JobState.FAILED, f"{reason}: {message}" if message else reason
    for condition in conditions:
        if condition.get("type") in _SUCCEEDED:
            return JobState.SUCCEEDED, None
    latest = max(conditions, key=lambda c: str(c.get("lastTransitionTime") or ""), default=None)
    if latest is None:
        return JobState.PENDING, None
    kind = latest.get("type")
    if kind in _RUNNING:
        return JobState.RUNNING, None if kind in ("Running", "PodsRunning") else kind
    return JobState.PENDING, kind if kind not in _PENDING else latest.get("reason") or kind


def _translate_aws(error: ClientError, action: str) -> BackendError:
    code = str(error.response.get("Error", {}).get("Code", ""))
    message = error.response.get("Error", {}).get("Message", str(error))
    http = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if http >= 500 or http == 429 or "Throttl" in code:
        return TransientError(f"{action}: {code}: {message}")
    if code.startswith("AccessDenied") or http in (401, 403):
        return BackendPermissionError(f"{action}: not permitted ({code}): {message}")
    if code in ("ResourceNotFoundException", "ResourceNotFound") or "not find" in message.lower():
        return JobNotFoundError(f"{action}: not found: {message}")
    return BackendError(f"{action}: {code}: {message}")
