"""Every handler imports without ML frameworks (a cold start pays for every import)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mixtune.functions import FUNCTIONS

HANDLER_MODULES = sorted({fn.handler.rpartition(".")[0] for fn in FUNCTIONS})
FORBIDDEN = ("torch", "transformers", "datasets", "pyarrow")


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MIXTUNE_", "POWERTOOLS_"))}


def _modules_loaded_by(module: str) -> list[str]:
    """The forbidden modules an import of ``module`` loads, in a fresh interpreter."""
    code = (
        f"import sys, json; import {module} as m; assert callable(m.handler); "
        f"print(json.dumps(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), check=True
    )
    return json.loads(out.stdout)


# How fast they import is a benchmark, not a test: benchmarks/bench_handler_imports.py.
@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_module_imports_without_ml_frameworks(module: str) -> None:
    assert _modules_loaded_by(module) == []


def test_every_function_in_the_list_has_a_handler_module() -> None:
    import importlib

    for fn in FUNCTIONS:
        module, _, attr = fn.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), fn.name
