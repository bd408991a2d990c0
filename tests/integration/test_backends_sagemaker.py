"""The sagemaker backend against moto's SageMaker (create, describe, stop).

moto 5.2 implements CreateTrainingJob and DescribeTrainingJob but not StopTrainingJob, and its
jobs are born Completed; the ``moto_sagemaker`` fixture adds a minimal StopTrainingJob to moto's
fake and lets tests set a job's status, so every state is checked through the real boto3 calls.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from moto.core.common_types import TYPE_RESPONSE
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse

from mixtune.backends import (
    BackendError,
    BackendPermissionError,
    JobNotFoundError,
    JobRef,
    JobState,
    TransientError,
    get_backend,
)
from mixtune.backends.sagemaker import SageMakerBackend
from mixtune.settings import Settings
from tests.support.jobs import job_spec

ROLE = "arn:aws:iam::123456789012:role/mixtune-training"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/mixtune-train:1"


def _stop_training_job(self: SageMakerResponse) -> TYPE_RESPONSE:
    job = self.sagemaker_backend.training_jobs[self._get_param("TrainingJobName")]
    job.training_job_status = "Stopped"
    return 200, {}, "{}"


@pytest.fixture
def moto_sagemaker(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.setattr(SageMakerResponse, "stop_training_job", _stop_training_job, raising=False)
    with mock_aws():
        yield sagemaker_backends["123456789012"]["us-east-1"].training_jobs


SAGEMAKER_JOB: dict[str, Any] = {
    "job_name": "run-9-train",
    "entry_point": "train",
    "arguments": ["--config", "s3://work/runs/9/train.json", "--output", "s3://work/runs/9/train"],
    "instance_type": "ml.g5.2xlarge",
    "environment": {"HF_HUB_OFFLINE": "1"},
    "output_uri": "s3://work/runs/9/train",
    "max_runtime_s": 3600,
}
spec = functools.partial(job_spec, SAGEMAKER_JOB)


def backend() -> SageMakerBackend:
    built = get_backend("sagemaker", Settings(sagemaker_role_arn=ROLE, training_image_uri=IMAGE))
    assert isinstance(built, SageMakerBackend)
    return built


def test_submit_creates_a_training_job_running_the_entry_point(moto_sagemaker: dict[str, Any]) -> None:
    ref = backend().submit(spec())
    assert ref.backend == "sagemaker"
    assert ref.id == "run-9-train"
    assert ref.data["arn"].endswith(":training-job/run-9-train")
    job = boto3.client("sagemaker").describe_training_job(TrainingJobName="run-9-train")
    algorithm = job["AlgorithmSpecification"]
    assert algorithm["TrainingImage"] == IMAGE
    assert algorithm["ContainerEntrypoint"] == ["python", "-m", "mixtune_training.train"]
    assert algorithm["ContainerArguments"] == spec().arguments
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://work/runs/9/train"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600


def test_request_uses_torchrun_for_several_gpus_and_carries_environment_and_retries() -> None:
    request = SageMakerBackend(ROLE, IMAGE).training_job_request(spec(gpus_per_node=4, max_retries=2))
    entry = request["AlgorithmSpecification"]["ContainerEntrypoint"]
    assert entry[:3] == ["torchrun", "--standalone", "--nproc-per-node=4"]
    assert request["Environment"]["MIXTUNE_OUTPUT_URI"] == "s3://work/runs/9/train"
    assert request["Environment"]["HF_HUB_OFFLINE"] == "1"
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 2}


@pytest.mark.parametrize(
    ("status", "secondary", "failure", "state", "reason"),
    [
        ("InProgress", "Starting", None, JobState.PENDING, "Starting"),
        ("InProgress", "Training", None, JobState.RUNNING, None),
        ("Completed", "Completed", None, JobState.SUCCEEDED, None),
        (
            "Failed",
            "Failed",
            "AlgorithmError: CUDA out of memory",
            JobState.FAILED,
            "AlgorithmError: CUDA out of memory",
        ),
        ("Stopped", "Stopped", None, JobState.CANCELLED, "stopped"),
    ],
)
def test_describe_maps_training_job_status(
    moto_sagemaker: dict[str, Any],
    status: str,
    secondary: str,
    failure: str | None,
    state: JobState,
    reason: str | None,
) -> None:
    ref = backend().submit(spec())
    fake = moto_sagemaker[ref.id]
    fake.training_job_status, fake.secondary_status = status, secondary
    if failure:
        fake.failure_reason = failure
    result = backend().status(JobRef.from_json(ref.to_json()))
    assert (result.state, result.reason) == (state, reason)


def test_cancel_stops_the_training_job(moto_sagemaker: dict[str, Any]) -> None:
    ref = backend().submit(spec())
    moto_sagemaker[ref.id].training_job_status = "InProgress"
    backend().cancel(ref)
    assert backend().status(ref).state == JobState.CANCELLED


def test_status_of_an_unknown_job_is_not_found(moto_sagemaker: dict[str, Any]) -> None:
    with pytest.raises(JobNotFoundError, match="no-such-job"):
        backend().status(JobRef(backend="sagemaker", id="no-such-job"))


def stubbed(method: str, code: str, http: int, message: str = "boom") -> SageMakerBackend:
    client = boto3.client("sagemaker", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(method, service_error_code=code, service_message=message, http_status_code=http)
    stubber.activate()
    return SageMakerBackend(ROLE, IMAGE, client=client)


def test_repeated_submit_returns_the_existing_job(aws_env: None) -> None:
    ref = stubbed("create_training_job", "ResourceInUse", 400, "Training job names must be unique").submit(
        spec()
    )
    assert ref.id == "run-9-train"


@pytest.mark.parametrize(
    ("code", "http", "error"),
    [
        ("ThrottlingException", 400, TransientError),
        ("InternalFailure", 500, TransientError),
        ("AccessDeniedException", 400, BackendPermissionError),
        ("ResourceLimitExceeded", 400, BackendError),
    ],
)
def test_api_errors_become_clear_errors_or_retries(aws_env: None, code: str, http: int, error: type) -> None:
    with pytest.raises(error, match=code):
        stubbed("create_training_job", code, http).submit(spec())


def test_specs_sagemaker_cannot_run_are_rejected_before_calling_aws() -> None:
    with pytest.raises(BackendError, match="hyperpod"):
        SageMakerBackend(ROLE, IMAGE).training_job_request(spec(node_count=2))
    with pytest.raises(BackendError, match="s3://"):
        SageMakerBackend(ROLE, IMAGE).training_job_request(spec(output_uri="/tmp/out"))
    with pytest.raises(BackendError, match="role"):
        SageMakerBackend("", IMAGE).training_job_request(spec())
