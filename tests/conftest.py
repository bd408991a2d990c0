"""Fixtures shared by every suite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """../shared/data beside the project; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent (it only exists beside a developer's checkout)")
    return SHARED_DATA


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region so nothing can reach a real AWS account."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "mixtune-test",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    os.environ.pop("AWS_ENDPOINT_URL", None)


@pytest.fixture(scope="session")
def prepared_catalog() -> Callable[..., Any]:
    """Builds a general-data catalog of prepared local files: ``name=(category, path)`` each.

    Session-scoped (it holds no state), so hypothesis tests may use it too.
    """
    from mixtune.mixing import Catalog

    def build(**sources: tuple[str, Path]) -> Catalog:
        return Catalog.parse(
            {
                "sources": [
                    {"name": name, "category": category, "uri": str(path), "format": "prepared"}
                    for name, (category, path) in sources.items()
                ]
            }
        )

    return build


@pytest.fixture(scope="session")
def write_mmlu_csvs() -> Callable[[Path], Path]:
    """Writes a two-subject MMLU folder (dev: 1 question each, test: 3) in the ../shared layout."""

    def write(root: Path) -> Path:
        for split, n in (("dev", 1), ("test", 3)):
            (root / split).mkdir(parents=True)
            for subject in ("anatomy", "virology"):
                rows = ["question,choice0,choice1,choice2,choice3,answer"]
                rows += [f"{subject} question {i}?,alpha,beta,gamma,delta,{i % 4}" for i in range(n)]
                (root / split / f"{subject}_{split}.csv").write_text("\n".join(rows) + "\n")
        return root

    return write
