"""Where the CDK app finds the repository's files, independent of the working directory."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LAMBDAS_DIR = REPO_ROOT / "lambdas"
LAYER_SOURCE_DIR = REPO_ROOT / "infra" / "layer"
PYPROJECT = REPO_ROOT / "pyproject.toml"
LAYER_CACHE_DIR = REPO_ROOT / ".cache" / "layer"
