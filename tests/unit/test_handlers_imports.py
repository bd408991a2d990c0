"""Every handler imports fast and without ML frameworks (a cold start pays for every import)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from mixtune.functions import FUNCTIONS

HANDLER_MODULES = sorted({fn.handler.rpartition(".")[0] for fn in FUNCTIONS})
FORBIDDEN = ("torch", "transformers", "datasets", "pyarrow")
IMPORT_BUDGET_US = 300_000


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("MIXTUNE_", "POWERTOOLS_"))}


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_module_loads_no_ml_framework(module: str) -> None:
    code = (
        f"import sys, {module} as m; assert callable(m.handler); "
        f"print(','.join(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_clean_env(), check=True
    )
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("module", HANDLER_MODULES)
def test_handler_module_imports_cold_within_budget(module: str) -> None:
    """`python -X importtime`: the module's cumulative import time, best of three runs."""
    pattern = re.compile(rf"import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.MULTILINE)
    timings = []
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            capture_output=True,
            text=True,
            env=_clean_env(),
            check=True,
        )
        match = pattern.search(proc.stderr)
        assert match, proc.stderr[-500:]
        timings.append(int(match.group(1)))
    assert min(timings) <= IMPORT_BUDGET_US, f"{module}: {min(timings) / 1000:.0f} ms"


def test_every_function_in_the_list_has_a_handler_module() -> None:
    import importlib

    for fn in FUNCTIONS:
        module, _, attr = fn.handler.rpartition(".")
        assert callable(getattr(importlib.import_module(module), attr)), fn.name
