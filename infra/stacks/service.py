"""The whole app: three stacks split by concern, with cdk-nag's AWS Solutions checks."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import App, Tags, Validations
from cdk_nag import AwsSolutionsChecks

from .api import ApiStack
from .config import InfraConfig
from .pipeline import PipelineStack
from .storage import StorageStack


@dataclass(frozen=True)
class Service:
    config: InfraConfig
    storage: StorageStack
    pipeline: PipelineStack
    api: ApiStack

    @property
    def stacks(self) -> tuple[StorageStack, PipelineStack, ApiStack]:
        return (self.storage, self.pipeline, self.api)


def build_service(app: App, *, nag: bool = True) -> Service:
    config = InfraConfig.from_app(app)
    name = config.prefix.capitalize()
    storage = StorageStack(
        app, f"{name}Storage", config=config, description="mixtune: key, buckets, tables, topic"
    )
    pipeline = PipelineStack(
        app,
        f"{name}Pipeline",
        config=config,
        storage=storage,
        description="mixtune: Lambdas, state machine, triggers",
    )
    api = ApiStack(
        app, f"{name}Api", config=config, storage=storage, pipeline=pipeline, description="mixtune: REST API"
    )
    for stack in (storage, pipeline, api):
        Tags.of(stack).add("project", "mixtune")
    if nag:
        Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Service(config=config, storage=storage, pipeline=pipeline, api=api)
