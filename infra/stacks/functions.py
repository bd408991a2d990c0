"""Lambda functions built from :data:`mixtune.functions.FUNCTIONS`, one shape for all of them.

Their environment is exactly the fields of :class:`mixtune.settings.Settings` (prefix
``MIXTUNE_``) plus the Powertools variables, so the code and the stack cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from mixtune.functions import FunctionDef
from mixtune.settings import Settings

from .config import InfraConfig
from .layer import ARCHITECTURE, RUNTIME
from .paths import LAMBDAS_DIR

SERVICE_NAME = "mixtune"
ENV_PREFIX = Settings.model_config.get("env_prefix", "MIXTUNE_")
# Left out of the function asset: caches, and the local cloud that only the CLI runs.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info", "mixtune/local"]


def settings_environment(values: Mapping[str, str]) -> dict[str, str]:
    """`MIXTUNE_*` variables for every Settings field: the stack's value, else the field's default.

    Every field is written out, so a deployed function shows its whole configuration; a value
    for a name that is not a Settings field is a mistake and fails synth.
    """
    fields = Settings.model_fields
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"not mixtune.settings.Settings fields: {sorted(unknown)}")
    environment = {}
    for name, info in sorted(fields.items()):
        value = values[name] if name in values else info.get_default(call_default_factory=True)
        environment[f"{ENV_PREFIX}{name.upper()}"] = value if isinstance(value, str) else str(value)
    return environment


def powertools_environment(metrics_namespace: str) -> dict[str, str]:
    return {
        "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
        "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
        "LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class FunctionFactory:
    """Everything the functions share: code asset, layer, environment, log settings."""

    layer: lambda_.ILayerVersion
    environment: Mapping[str, str]
    config: InfraConfig
    # One code asset per stack: CDK refuses to share an asset between stacks.
    _code: dict[str, lambda_.Code] = field(default_factory=dict)

    def code_for(self, scope: Construct) -> lambda_.Code:
        stack = Stack.of(scope).node.path
        if stack not in self._code:
            self._code[stack] = lambda_.Code.from_asset(str(LAMBDAS_DIR), exclude=ASSET_EXCLUDES)
        return self._code[stack]

    def create(
        self, scope: Construct, fn: FunctionDef, role: iam.IRole | None = None, **extra: object
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            scope,
            f"{fn.camel}Logs",
            retention=retention(self.config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        if role is None:
            role = iam.Role(
                scope,
                f"{fn.camel}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"mixtune {fn.name} Lambda",
            )
        # Its own log group only, instead of the managed basic-execution policy's logs:* on all groups.
        log_group.grant_write(role)
        reserved = self.config.reserved_concurrency.get(fn.name, 0) or None
        return lambda_.Function(
            scope,
            f"{fn.camel}Function",
            description=f"mixtune {fn.name} ({fn.handler})",
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=fn.handler,
            code=self.code_for(scope),
            layers=[self.layer],
            timeout=Duration.seconds(fn.timeout_s),
            memory_size=fn.memory_mb,
            environment=dict(self.environment),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
            reserved_concurrent_executions=reserved,
            **extra,
        )


_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
}


def retention(days: int) -> logs.RetentionDays:
    """The shortest CloudWatch retention that keeps logs at least `days` days."""
    return next(
        (value for limit, value in sorted(_RETENTION.items()) if limit >= days), logs.RetentionDays.TWO_YEARS
    )
