"""Deployment settings read from CDK context: one pydantic model, validated at synth time.

Every field is documented in docs/infra.md; the context key is the camelCase alias.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from aws_cdk import App
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from mixtune.functions import FunctionDef, resized_functions

from .k8s_rbac import DEFAULT_GROUP, DEFAULT_SERVICE_ACCOUNT

_SCHEDULE_EXPRESSION = re.compile(r"^(cron|rate)\(.+\)$")


class _ContextModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class ScheduleConfig(_ContextModel):
    """One EventBridge rule that re-runs datasets through the `schedule` Lambda."""

    name: str = Field(pattern=r"^[A-Za-z0-9-]{1,40}$")
    expression: str  # "cron(0 3 * * ? *)" or "rate(7 days)"
    # What mixtune.handlers.schedule does: re-run datasets or re-evaluate the promoted adapter.
    action: Literal["rerun", "reevaluate"] = "rerun"
    datasets: tuple[str, ...] = ()  # s3:// URIs; empty = the service's scheduled_datasets

    @field_validator("expression")
    @classmethod
    def _cron_or_rate(cls, value: str) -> str:
        if not _SCHEDULE_EXPRESSION.match(value):
            raise ValueError(f"schedule expression must be cron(...) or rate(...), got {value!r}")
        return value


class ApiThrottle(_ContextModel):
    rate_limit: float = 10.0  # steady requests per second
    burst_limit: int = 20


class InfraConfig(_ContextModel):
    """What a deployment may change without touching code."""

    prefix: str = Field("mixtune", pattern=r"^[a-z][a-z0-9-]{1,20}$")
    notification_email: str | None = None
    schedules: tuple[ScheduleConfig, ...] = ()
    # The SageMaker HyperPod cluster (what the backend describes) and the EKS cluster behind it
    # (what the access entry maps into): both or neither; "" = no HyperPod access at all.
    hyperpod_cluster_name: str = ""
    hyperpod_eks_cluster_name: str = ""
    hyperpod_namespace: str = Field("mixtune", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    hyperpod_kubernetes_group: str = DEFAULT_GROUP
    # The job pods: their service account (mapped to the job role by EKS Pod Identity), their
    # launcher, Kueue defaults, and an optional FSx claim for checkpoints (see docs/backends.md).
    hyperpod_service_account: str = Field(DEFAULT_SERVICE_ACCOUNT, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    hyperpod_launcher: str = "hyperpodrun"
    hyperpod_queue: str = ""
    hyperpod_priority: str = ""
    hyperpod_checkpoint_claim: str = ""
    # SageMaker training jobs in a VPC (subnet and security group ids, both or neither) and
    # encryption between their instances.
    sagemaker_subnets: tuple[str, ...] = ()
    sagemaker_security_groups: tuple[str, ...] = ()
    sagemaker_inter_container_encryption: bool = True
    # The training image is built from training_image/Dockerfile at deploy unless a URI is given.
    build_training_image: bool = True
    training_image_build_args: dict[str, str] = Field(default_factory=dict)
    # s3:// folders of base models (Hugging Face weights) the jobs may read, beyond an s3:// baseModel.
    model_uris: tuple[str, ...] = ()
    # How a file dropped under incoming/ reaches `prepare`: an S3 event notification, or S3's
    # "Object Created" event on EventBridge (a rule with a dead-letter queue).
    upload_trigger: Literal["notification", "eventbridge"] = "notification"
    default_backend: Literal["sagemaker", "hyperpod"] = "sagemaker"  # `local` cannot run on AWS
    base_model: str = "HuggingFaceTB/SmolLM2-135M-Instruct"
    training_image_uri: str = ""
    catalog_uri: str = ""  # "" = s3://<work bucket>/catalog/catalog.yaml
    # RunConfig fields for runs nobody configured (a dropped file, a schedule).
    default_run_config: dict[str, Any] = Field(default_factory=dict)
    # The cost guard (mixtune.runs.validation), enforced when a run is requested and before any
    # job is launched: empty lists allow any value, except base models (empty: baseModel only).
    # The `local` backend is refused on AWS whatever these say.
    allowed_backends: tuple[Literal["sagemaker", "hyperpod"], ...] = ()
    allowed_instance_types: tuple[str, ...] = (
        "ml.g5.xlarge",
        "ml.g5.2xlarge",
        "ml.g5.12xlarge",
        "ml.g6e.xlarge",
        "ml.g6e.12xlarge",
        "ml.g6e.48xlarge",
        "ml.p4d.24xlarge",
        "ml.p5.48xlarge",
    )
    allowed_base_models: tuple[str, ...] = ()
    max_node_count: int = Field(4, ge=1, le=64)
    # Reserved concurrency per function name; 0 leaves the function unreserved.
    reserved_concurrency: dict[str, int] = Field(
        default_factory=lambda: {"prepare": 5, "launch_job": 5, "schedule": 1, "api": 10}
    )
    # Lambda sizes per function name over the measured defaults of mixtune.functions, e.g.
    # {"prepare": {"memory_mb": 3008, "ephemeral_mb": 4096}}; keys timeout_s, memory_mb,
    # ephemeral_mb, each within Lambda's limits (docs/dataprep.md, "Where data steps run").
    function_sizes: dict[str, dict[str, int]] = Field(default_factory=dict)
    api_throttle: ApiThrottle = ApiThrottle()
    log_retention_days: int = 90
    removal_policy: Literal["retain", "destroy"] = "retain"
    rejected_expiry_days: int = Field(30, ge=1)
    tmp_expiry_days: int = Field(7, ge=1)

    @field_validator("function_sizes")
    @classmethod
    def _sizes_lambda_allows(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        resized_functions(value)  # unknown functions or sizes past Lambda's limits: ValueError
        return value

    @property
    def functions(self) -> tuple[FunctionDef, ...]:
        """mixtune.functions.FUNCTIONS with this deployment's functionSizes applied."""
        return resized_functions(self.function_sizes)

    def function(self, name: str) -> FunctionDef:
        return next(fn for fn in self.functions if fn.name == name)

    @field_validator("default_run_config")
    @classmethod
    def _a_valid_run_config(cls, value: dict[str, Any]) -> dict[str, Any]:
        from mixtune.runs import RunConfig

        RunConfig.model_validate(value)  # a bad default fails synth, not the first upload
        return value

    @model_validator(mode="after")
    def _default_runs_pass_the_door(self) -> InfraConfig:
        """Runs nobody configured must pass the checks every run passes on AWS (the cost guard,
        the poll loops): a bad default fails synth, not the first upload."""
        from mixtune.errors import RunConfigError
        from mixtune.runs.validation import run_config_for
        from mixtune.settings import Settings

        settings = Settings(
            platform="aws",
            default_backend=self.default_backend,
            base_model=self.base_model,
            default_run_config=self.default_run_config,
            allowed_backends=list(self.allowed_backends),
            allowed_instance_types=list(self.allowed_instance_types),
            allowed_base_models=list(self.allowed_base_models or (self.base_model,)),
            max_node_count=self.max_node_count,
        )
        try:
            run_config_for({}, settings)
        except RunConfigError as exc:
            raise ValueError(f"defaultRunConfig: {exc}") from None
        return self

    @model_validator(mode="after")
    def _hyperpod_names_together(self) -> InfraConfig:
        if bool(self.hyperpod_cluster_name) != bool(self.hyperpod_eks_cluster_name):
            raise ValueError("set both hyperpodClusterName and hyperpodEksClusterName, or neither")
        return self

    @model_validator(mode="after")
    def _vpc_together(self) -> InfraConfig:
        if bool(self.sagemaker_subnets) != bool(self.sagemaker_security_groups):
            raise ValueError("set both sagemakerSubnets and sagemakerSecurityGroups, or neither")
        return self

    @field_validator("model_uris")
    @classmethod
    def _s3_folders(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [uri for uri in value if not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$", uri)]
        if bad:
            raise ValueError(f"modelUris must be s3://bucket/prefix/ folders: {bad}")
        return value

    @property
    def readable_model_uris(self) -> tuple[str, ...]:
        """Where jobs may read base models: modelUris, and baseModel when it is an s3:// folder."""
        extra = (self.base_model,) if self.base_model.startswith("s3://") else ()
        return tuple(dict.fromkeys((*self.model_uris, *extra)))

    @property
    def hyperpod_enabled(self) -> bool:
        return bool(self.hyperpod_eks_cluster_name)

    @classmethod
    def context_keys(cls) -> list[str]:
        return [field.alias or name for name, field in cls.model_fields.items()]

    @classmethod
    def from_app(cls, app: App) -> InfraConfig:
        values = {}
        for key in cls.context_keys():
            value = app.node.try_get_context(key)
            if isinstance(value, str) and value.startswith(("[", "{")):
                value = json.loads(value)  # `cdk synth -c key='[...]'` passes JSON as text
            if value is not None and value != "":
                values[key] = value
        return cls.model_validate(values)
