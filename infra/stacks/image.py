"""The training image: a given URI, or built from `training_image/Dockerfile` and pushed at deploy.

Synth stays offline: a `DockerImageAsset` only stages the build context (the files the
Dockerfile copies) into `cdk.out`; `cdk deploy` runs `docker build` and pushes the image to the
bootstrap stack's asset repository. The Dockerfile's base is an AWS Deep Learning Container
(us-east-1 by default; `trainingImageBuildArgs` `{"BASE_IMAGE": ...}` for another region), so the
deploying machine logs in to that registry first (docs/infra.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import IgnoreMode
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from constructs import Construct

from .config import InfraConfig
from .paths import REPO_ROOT

DOCKERFILE = "training_image/Dockerfile"
# The build context is the repository root, less everything the Dockerfile does not copy.
BUILD_CONTEXT = [
    "*",
    "!pyproject.toml",
    "!README.md",
    "!lambdas",
    "!training_image",
    "**/__pycache__",
    "**/*.pyc",
    "**/*.egg-info",
]

class TrainingImageUnavailable(ValueError):
    """A backend needs the training image and the app can neither name nor build one."""


@dataclass(frozen=True)
class TrainingImage:
    uri: str
    asset: ecr_assets.DockerImageAsset | None

    def grant_pull(self, role: iam.IRole) -> None:
        if self.asset is not None:
            self.asset.repository.grant_pull(role)


def training_image(scope: Construct, config: InfraConfig) -> TrainingImage:
    """The image every job runs (both AWS backends run it): `trainingImageUri`, else the asset."""
    if config.training_image_uri:
        return TrainingImage(config.training_image_uri, None)
    dockerfile = REPO_ROOT / DOCKERFILE
    if not config.build_training_image or not dockerfile.is_file():
        why = (
            "buildTrainingImage is false"
            if not config.build_training_image
            else f"{DOCKERFILE} is not in {REPO_ROOT}"
        )
        raise TrainingImageUnavailable(
            f"the {config.default_backend} backend runs jobs in the training image, but trainingImageUri is "
            f"not set and the image cannot be built ({why}): pass -c trainingImageUri=<ECR image URI>, "
            "or build it from training_image/Dockerfile at deploy (buildTrainingImage true, the default)"
        )
    asset = ecr_assets.DockerImageAsset(
        scope,
        "TrainingImage",
        directory=str(REPO_ROOT),
        file=DOCKERFILE,
        exclude=BUILD_CONTEXT,
        ignore_mode=IgnoreMode.DOCKER,
        platform=ecr_assets.Platform.LINUX_AMD64,  # GPU instances are x86_64
        build_args=dict(config.training_image_build_args) or None,
    )
    return TrainingImage(asset.image_uri, asset)
