"""Lambda functions built from :data:`mixtune.functions.FUNCTIONS`, one shape for all of them.

Their environment is exactly the fields of :class:`mixtune.settings.Settings` (prefix
``MIXTUNE_``) plus the Powertools variables, so the code and the stack cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from mixtune.functions import FunctionDef, function_environment

from .config import InfraConfig
from .layer import ARCHITECTURE, RUNTIME
from .paths import LAMBDAS_DIR

SERVICE_NAME = "mixtune"
# Left out of the function asset: caches, and the local cloud that only the CLI runs.
ASSET_EXCLUDES = ["**/__pycache__", "**/*.pyc", "*.egg-info", "mixtune/local"]


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
            ephemeral_storage_size=Size.mebibytes(fn.ephemeral_mb),
            environment={**self.environment, **function_environment(fn)},
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
