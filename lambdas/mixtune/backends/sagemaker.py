"""The ``sagemaker`` backend: one SageMaker training job per spec.

The container runs the training image's launcher, ``launch [--nproc-per-node=N] <entry point>``
(``ContainerEntrypoint``) with the entry point's arguments (``ContainerArguments``), so the image
needs no SageMaker training toolkit: on every host ``mixtune-launch`` reads SageMaker's resource
config and starts ``torchrun`` with the node count, its node rank and the first host as master
(any ``InstanceCount``); evaluation runs as one process on the first host. SageMaker keeps the
job's model artifacts under the spec's ``output_uri`` (the work bucket), syncs
``/opt/ml/checkpoints`` with the spec's ``checkpoint_uri`` (``CheckpointConfig``), encrypts the
outputs and EBS volumes with the data key, and runs the job in the given VPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

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
from mixtune.instances import find_instance_type
from mixtune.settings import Settings

NAME = "sagemaker"
VOLUME_SIZE_GB = 100
# The training image's launcher (mixtune-launch): torchrun over the job's hosts from SageMaker's
# resource config; evaluation and rehearsal generation as one process on the first host.
LAUNCHER = "launch"
CHECKPOINT_LOCAL_PATH = "/opt/ml/checkpoints"
# SecondaryStatus values of an InProgress job that has not started training yet.
_NOT_STARTED = {
    "Starting",
    "Pending",
    "LaunchingMLInstances",
    "PreparingTrainingStack",
    "Downloading",
    "DownloadingTrainingImage",
}
_RETRYABLE_CODES = {
    "ThrottlingException",
    "Throttling",
    "ServiceUnavailable",
    "InternalFailure",
    "InternalServerError",
    "RequestTimeout",
}
_PERMISSION_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}


class SageMakerBackend:
    name = NAME

    def __init__(
        self,
        role_arn: str,
        image_uri: str = "",
        client: Any = None,
        *,
        kms_key_arn: str = "",
        subnets: Sequence[str] = (),
        security_groups: Sequence[str] = (),
        inter_container_encryption: bool = True,
    ) -> None:
        self.role_arn = role_arn
        self.image_uri = image_uri
        self.kms_key_arn = kms_key_arn
        self.subnets = list(subnets)
        self.security_groups = list(security_groups)
        self.inter_container_encryption = inter_container_encryption
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> SageMakerBackend:
        return cls(
            settings.sagemaker_role_arn,
            settings.training_image_uri,
            kms_key_arn=settings.kms_key_arn,
            subnets=settings.sagemaker_subnets,
            security_groups=settings.sagemaker_security_groups,
            inter_container_encryption=settings.sagemaker_inter_container_encryption,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("sagemaker")
        return self._client

    def training_job_request(self, spec: JobSpec) -> dict[str, Any]:
        """The CreateTrainingJob request for ``spec`` (public so it can be inspected)."""
        image = spec.image_uri or self.image_uri
        if not image:
            raise BackendError(
                "sagemaker backend: no image (JobSpec.image_uri or MIXTUNE_TRAINING_IMAGE_URI)"
            )
        if not self.role_arn:
            raise BackendError("sagemaker backend: no execution role (MIXTUNE_SAGEMAKER_ROLE_ARN)")
        if not spec.output_uri.startswith("s3://"):
            raise BackendError(f"sagemaker backend: output_uri must be an s3:// URI, got {spec.output_uri!r}")
        if spec.checkpoint_uri and not spec.checkpoint_uri.startswith("s3://"):
            raise BackendError(
                f"sagemaker backend: checkpoint_uri must be an s3:// URI, got {spec.checkpoint_uri!r}"
            )
        if bool(self.subnets) != bool(self.security_groups):
            raise BackendError(
                "sagemaker backend: a VPC needs both subnets and security groups "
                "(MIXTUNE_SAGEMAKER_SUBNETS, MIXTUNE_SAGEMAKER_SECURITY_GROUPS)"
            )
        environment = spec.job_environment(checkpoint_uri=False)
        request: dict[str, Any] = {
            "TrainingJobName": spec.job_name,
            "AlgorithmSpecification": {
                "TrainingImage": image,
                "TrainingInputMode": "File",
                "ContainerEntrypoint": launch_entrypoint(spec),
                "ContainerArguments": spec.arguments,
            },
            "RoleArn": self.role_arn,
            "OutputDataConfig": {"S3OutputPath": spec.output_uri},
            "ResourceConfig": {
                "InstanceType": spec.instance_type,
                "InstanceCount": spec.node_count,
                "VolumeSizeInGB": VOLUME_SIZE_GB,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_s},
            "Environment": environment,
            "EnableInterContainerTrafficEncryption": self.inter_container_encryption,
            "Tags": [{"Key": "mixtune:job", "Value": spec.job_name}],
        }
        if not request["AlgorithmSpecification"]["ContainerArguments"]:
            del request["AlgorithmSpecification"]["ContainerArguments"]  # the API rejects an empty list
        if self.kms_key_arn:
            request["OutputDataConfig"]["KmsKeyId"] = self.kms_key_arn
            shape = find_instance_type(spec.instance_type)
            # Instance storage is encrypted by the hardware; SageMaker refuses a key for it.
            if shape is not None and not shape.instance_storage:
                request["ResourceConfig"]["VolumeKmsKeyId"] = self.kms_key_arn
        if self.subnets:
            request["VpcConfig"] = {"SecurityGroupIds": self.security_groups, "Subnets": self.subnets}
        if spec.checkpoint_uri:
            # SageMaker syncs the local folder with S3 both ways: a retried job finds its checkpoints.
            request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_uri, "LocalPath": CHECKPOINT_LOCAL_PATH}
            environment["MIXTUNE_CHECKPOINT_DIR"] = CHECKPOINT_LOCAL_PATH
        if spec.max_retries:
            request["RetryStrategy"] = {"MaximumRetryAttempts": spec.max_retries}
        return request

    def submit(self, spec: JobSpec) -> JobRef:
        request = self.training_job_request(spec)
        ref = JobRef(backend=NAME, id=spec.job_name, data={"output_uri": spec.output_uri})
        try:
            response = self.client.create_training_job(**request)
        except ClientError as error:
            if _code(error) == "ResourceInUse":
                return ref  # a repeated submit: the job exists already
            raise _translate(error, f"create training job {spec.job_name!r}") from error
        except BotoCoreError as error:
            raise TransientError(f"create training job {spec.job_name!r}: {error}") from error
        return ref.model_copy(update={"data": {**ref.data, "arn": response["TrainingJobArn"]}})

    def status(self, ref: JobRef) -> JobStatus:
        check_ref(ref, NAME)
        try:
            job = self.client.describe_training_job(TrainingJobName=ref.id)
        except ClientError as error:
            raise _translate(error, f"describe training job {ref.id!r}") from error
        except BotoCoreError as error:
            raise TransientError(f"describe training job {ref.id!r}: {error}") from error
        progress = read_progress(ref.data.get("output_uri", ""))
        state, reason = map_training_job_status(job)
        return JobStatus(state=state, reason=reason, progress=progress)

    def cancel(self, ref: JobRef) -> None:
        check_ref(ref, NAME)
        try:
            self.client.stop_training_job(TrainingJobName=ref.id)
        except ClientError as error:
            # Stopping a job that already ended is a ValidationException; that is fine.
            if _code(error) == "ValidationException" and "not found" not in str(error).lower():
                return
            raise _translate(error, f"stop training job {ref.id!r}") from error
        except BotoCoreError as error:
            raise TransientError(f"stop training job {ref.id!r}: {error}") from error


def launch_entrypoint(spec: JobSpec) -> list[str]:
    """``launch [--nproc-per-node=N] <entry point>``: the image's launcher starts the processes
    (one per GPU on every host for training; the GPUs are counted in the job where the instance
    type is unknown here)."""
    entrypoint = [LAUNCHER]
    if spec.distributed and (spec.gpus_per_node is not None or find_instance_type(spec.instance_type)):
        entrypoint.append(f"--nproc-per-node={spec.processes_per_node()}")
    return [*entrypoint, spec.entry_point]


def map_training_job_status(job: dict[str, Any]) -> tuple[JobState, str | None]:
    status = job.get("TrainingJobStatus")
    secondary = job.get("SecondaryStatus")
    if status == "Completed":
        return JobState.SUCCEEDED, None
    if status == "Failed":
        return JobState.FAILED, job.get("FailureReason") or "training job failed"
    if status == "Stopped":
        return JobState.CANCELLED, "stopped"
    if status == "Stopping":
        return JobState.RUNNING, "stopping"
    if secondary in _NOT_STARTED:
        return JobState.PENDING, secondary
    return JobState.RUNNING, None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _translate(error: ClientError, action: str) -> BackendError:
    code = _code(error)
    message = error.response.get("Error", {}).get("Message", str(error))
    http = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    if code in _RETRYABLE_CODES or http >= 500 or http == 429:
        return TransientError(f"{action}: {code}: {message}")
    if code in _PERMISSION_CODES or http in (401, 403):
        return BackendPermissionError(f"{action}: not permitted ({code}): {message}")
    if code in ("ResourceNotFound", "ValidationException") and (
        "not find" in message.lower() or "not found" in message.lower()
    ):
        return JobNotFoundError(f"{action}: not found: {message}")
    return BackendError(f"{action}: {code}: {message}")
