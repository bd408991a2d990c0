"""The sagemaker backend against moto's SageMaker (create, describe, stop).

moto 5.2 implements CreateTrainingJob and DescribeTrainingJob but not StopTrainingJob, and its
jobs are born Completed; the ``moto_sagemaker`` fixture adds a minimal StopTrainingJob to moto's
fake and lets tests set a job's status, so every state is checked through the real boto3 calls.
"""

from __future__ import annotations

import functools
import json
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
    assert algorithm["ContainerEntrypoint"] == ["launch", "--nproc-per-node=1", "train"]
    assert algorithm["ContainerArguments"] == spec().arguments
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://work/runs/9/train"
    assert job["ResourceConfig"]["InstanceType"] == "ml.g5.2xlarge"
    assert job["ResourceConfig"]["InstanceCount"] == 1
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600


KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VPC = {"subnets": ["subnet-0a1b2c3d"], "security_groups": ["sg-0a1b2c3d"]}


def full_backend(**options: Any) -> SageMakerBackend:
    return SageMakerBackend(ROLE, IMAGE, kms_key_arn=KEY, **{**VPC, **options})


def multi_node_spec(**overrides: Any) -> Any:
    return spec(
        instance_type="ml.g5.12xlarge",
        node_count=2,
        max_retries=2,
        checkpoint_uri="s3://work/runs/9/train/checkpoints",
        **overrides,
    )


def validate_against_the_service_model(request: dict[str, Any]) -> None:
    """botocore's own client-side validation of a CreateTrainingJob request (types, required
    members, lengths and ranges from the sagemaker service model it ships)."""
    from botocore.session import get_session
    from botocore.validate import ParamValidator

    model = get_session().get_service_model("sagemaker").operation_model("CreateTrainingJob")
    report = ParamValidator().validate(request, model.input_shape)
    assert not report.has_errors(), report.generate_report()


def test_request_runs_the_image_launcher_on_every_node_with_retries() -> None:
    request = SageMakerBackend(ROLE, IMAGE).training_job_request(multi_node_spec())
    algorithm = request["AlgorithmSpecification"]
    assert algorithm["ContainerEntrypoint"] == ["launch", "--nproc-per-node=4", "train"]
    assert algorithm["ContainerArguments"] == spec().arguments
    assert request["ResourceConfig"]["InstanceCount"] == 2
    assert request["Environment"]["MIXTUNE_OUTPUT_URI"] == "s3://work/runs/9/train"
    assert request["Environment"]["HF_HUB_OFFLINE"] == "1"
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 2}


def test_the_launcher_joins_the_two_hosts_of_the_request(tmp_path: Any) -> None:
    """What the image's mixtune-launch does with this request on each host of a two-host job."""
    from mixtune_training import launch

    request = SageMakerBackend(ROLE, IMAGE).training_job_request(multi_node_spec())
    entrypoint = request["AlgorithmSpecification"]["ContainerEntrypoint"]
    assert entrypoint[0] == "launch"  # the image's wrapper of `python -m mixtune_training.launch`
    options = launch.build_parser().parse_args(
        entrypoint[1:] + request["AlgorithmSpecification"]["ContainerArguments"]
    )
    commands = []
    for host in ("algo-1", "algo-2"):
        config = tmp_path / f"{host}.json"
        config.write_text(json.dumps({"current_host": host, "hosts": ["algo-1", "algo-2"]}))
        cluster = launch.read_cluster(config, env={})
        commands.append(launch.launch_command(options.entry, options.args, cluster, options.nproc_per_node))
    for rank, command in enumerate(commands):
        assert command is not None
        assert command[3:8] == [
            "--nnodes=2",
            f"--node-rank={rank}",
            "--nproc-per-node=4",
            "--master-addr=algo-1",
            "--master-port=29500",
        ]
        assert command[8:10] == ["-m", "mixtune_training.train"]


def test_evaluation_runs_as_one_process_on_the_first_host(tmp_path: Any) -> None:
    from mixtune_training import launch

    evaluation = spec(job_name="run-9-evaluate-tuned", entry_point="evaluate", instance_type="ml.g5.12xlarge")
    request = SageMakerBackend(ROLE, IMAGE).training_job_request(evaluation)
    entrypoint = request["AlgorithmSpecification"]["ContainerEntrypoint"]
    assert entrypoint == ["launch", "evaluate"]
    options = launch.build_parser().parse_args(entrypoint[1:])
    command = launch.launch_command(options.entry, [], None, nproc=4)
    assert command is not None and command[1:] == ["-m", "mixtune_training.evaluate"]


def test_request_encrypts_outputs_and_ebs_volumes_with_the_data_key_and_runs_in_the_vpc() -> None:
    request = full_backend().training_job_request(spec(instance_type="ml.m5.xlarge", entry_point="evaluate"))
    assert request["OutputDataConfig"]["KmsKeyId"] == KEY
    assert request["ResourceConfig"]["VolumeKmsKeyId"] == KEY
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-0a1b2c3d"], "Subnets": ["subnet-0a1b2c3d"]}
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert (
        full_backend(inter_container_encryption=False).training_job_request(spec())[
            "EnableInterContainerTrafficEncryption"
        ]
        is False
    )


def test_no_volume_key_for_instance_storage_which_sagemaker_encrypts_itself() -> None:
    for instance_type in ("ml.g5.12xlarge", "ml.p5.48xlarge", "ml.g6e.48xlarge"):
        request = full_backend().training_job_request(spec(instance_type=instance_type))
        assert "VolumeKmsKeyId" not in request["ResourceConfig"], instance_type
        assert request["OutputDataConfig"]["KmsKeyId"] == KEY


def test_checkpoints_sync_between_the_local_folder_and_the_runs_s3_folder() -> None:
    request = full_backend().training_job_request(multi_node_spec())
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://work/runs/9/train/checkpoints",
        "LocalPath": "/opt/ml/checkpoints",
    }
    # SageMaker syncs: the job must not upload them a second time itself.
    assert "MIXTUNE_CHECKPOINT_URI" not in request["Environment"]
    assert request["Environment"]["MIXTUNE_CHECKPOINT_DIR"] == "/opt/ml/checkpoints"


def test_full_requests_pass_botocores_validation_of_the_service_model() -> None:
    for job in (
        multi_node_spec(),
        spec(instance_type="ml.m5.xlarge", entry_point="evaluate"),
        spec(arguments=[]),
    ):
        validate_against_the_service_model(full_backend().training_job_request(job))
    validate_against_the_service_model(SageMakerBackend(ROLE, IMAGE).training_job_request(spec()))


def test_the_service_model_check_would_catch_a_bad_request() -> None:
    request = full_backend().training_job_request(multi_node_spec())
    request["CheckpointConfig"] = {"LocalPath": "/opt/ml/checkpoints"}  # S3Uri is required
    with pytest.raises(AssertionError, match="S3Uri"):
        validate_against_the_service_model(request)
    request = full_backend().training_job_request(multi_node_spec())
    request["ResourceConfig"]["InstanceCount"] = "2"
    with pytest.raises(AssertionError, match="InstanceCount"):
        validate_against_the_service_model(request)


def test_every_instance_type_in_the_table_is_a_sagemaker_training_instance_type() -> None:
    from botocore.session import get_session

    from mixtune.instances import INSTANCE_TYPES

    model = get_session().get_service_model("sagemaker")
    assert set(INSTANCE_TYPES) <= set(model.shape_for("TrainingInstanceType").enum)


def test_settings_reach_the_request() -> None:
    settings = Settings(
        sagemaker_role_arn=ROLE,
        training_image_uri=IMAGE,
        kms_key_arn=KEY,
        sagemaker_subnets=["subnet-1"],
        sagemaker_security_groups=["sg-1"],
        sagemaker_inter_container_encryption=False,
    )
    built = get_backend("sagemaker", settings)
    assert isinstance(built, SageMakerBackend)
    request = built.training_job_request(spec())
    assert request["VpcConfig"] == {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}
    assert request["OutputDataConfig"]["KmsKeyId"] == KEY
    assert request["EnableInterContainerTrafficEncryption"] is False


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
    with pytest.raises(BackendError, match="s3://"):
        SageMakerBackend(ROLE, IMAGE).training_job_request(spec(output_uri="/tmp/out"))
    with pytest.raises(BackendError, match="s3://"):
        SageMakerBackend(ROLE, IMAGE).training_job_request(spec(checkpoint_uri="/fsx/ckpt"))
    with pytest.raises(BackendError, match="role"):
        SageMakerBackend("", IMAGE).training_job_request(spec())
    with pytest.raises(BackendError, match="both subnets and security groups"):
        SageMakerBackend(ROLE, IMAGE, subnets=["subnet-1"]).training_job_request(spec())
