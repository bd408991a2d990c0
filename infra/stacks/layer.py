"""The dependencies layer: the package's core dependencies, installed by pip for Lambda arm64.

Bundling runs pip on this machine (``ILocalBundling``), no Docker. The result is cached under
``.cache/layer/<hash>/`` keyed by the requirements and the target platform, so a fresh
``cdk.out`` does not reach PyPI again. Docker is only the fallback the CDK API requires.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .paths import LAYER_CACHE_DIR, LAYER_SOURCE_DIR, PYPROJECT

PYTHON_VERSION = "3.12"
PIP_PLATFORM = "manylinux2014_aarch64"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.ARM_64
FALLBACK_IMAGE = "public.ecr.aws/sam/build-python3.12:latest-arm64"
# Set this context flag (tests do) to skip pip and package an empty layer: fast and offline.
SKIP_CONTEXT_KEY = "mixtune:skipLayerBundling"


def core_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The Lambda runtime set: `[project].dependencies` of pyproject.toml, nothing listed twice."""
    with pyproject.open("rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def requirements_hash(requirements: list[str]) -> str:
    key = "\n".join([PIP_PLATFORM, PYTHON_VERSION, *sorted(requirements)])
    return hashlib.sha256(key.encode()).hexdigest()


def pip_command(requirements: list[str], target: str) -> list[str]:
    return [
        "pip",
        "install",
        "--quiet",
        "--quiet",  # twice: errors only, not this machine's index-location warnings
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        target,
        "--platform",
        PIP_PLATFORM,
        "--only-binary=:all:",
        "--python-version",
        PYTHON_VERSION,
        *requirements,
    ]


@jsii.implements(ILocalBundling)
class PipLayerBundling:
    """Installs the requirements into ``<output>/python`` with this machine's pip, via a cache."""

    def __init__(self, requirements: list[str], cache_dir: Path = LAYER_CACHE_DIR) -> None:
        self._requirements = requirements
        self._cache_dir = cache_dir

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        try:
            cached = self._cached_site_packages()
        except subprocess.CalledProcessError as error:
            print(f"mixtune layer: pip failed ({error}); falling back to Docker", file=sys.stderr)
            return False
        shutil.copytree(cached, Path(output_dir) / "python", dirs_exist_ok=True)
        return True

    def _cached_site_packages(self) -> Path:
        entry = self._cache_dir / requirements_hash(self._requirements)
        done = entry / "python"
        if done.is_dir():
            return done
        self._cache_dir.mkdir(parents=True, exist_ok=True)
        ignore = self._cache_dir.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# created by the CDK app: a local cache, never committed\n*\n")
        # Install into a scratch folder and rename: an interrupted pip never leaves a half cache.
        with tempfile.TemporaryDirectory(dir=self._cache_dir) as scratch:
            target = Path(scratch) / "python"
            command = pip_command(self._requirements, str(target))
            subprocess.run([sys.executable, "-m", *command], check=True)
            entry.mkdir(exist_ok=True)
            target.rename(done)
        return done


def dependencies_layer(scope: Construct, construct_id: str) -> lambda_.LayerVersion:
    requirements = core_requirements()
    skip = bool(scope.node.try_get_context(SKIP_CONTEXT_KEY))
    if skip:
        code = lambda_.Code.from_asset(
            str(LAYER_SOURCE_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=hashlib.sha256(b"mixtune empty test layer").hexdigest(),
        )
    else:
        docker_command = " ".join(pip_command(requirements, "/asset-output/python"))
        code = lambda_.Code.from_asset(
            str(LAYER_SOURCE_DIR),
            asset_hash_type=AssetHashType.CUSTOM,
            asset_hash=requirements_hash(requirements),
            bundling=BundlingOptions(
                image=DockerImage.from_registry(FALLBACK_IMAGE),
                command=["bash", "-c", docker_command],
                local=PipLayerBundling(requirements),
            ),
        )
    return lambda_.LayerVersion(
        scope,
        construct_id,
        code=code,
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        description="mixtune core dependencies (pyproject [project].dependencies), arm64, Python 3.12",
    )
