"""The local cloud runs each invocation within its function's timeout, memory and ephemeral
storage, and fails it as Lambda does (issue 14: without it nothing that passes Lambda's limits
showed up locally). Both runners: one-shot subprocesses and warm workers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mixtune.local.invoke import run_in_subprocess
from mixtune.local.limits import EPHEMERAL_VARIABLE, MEMORY_VARIABLE, TIMEOUT_VARIABLE
from mixtune.local.warm import WarmPool

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def importable_handlers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


def sized(timeout_s: int = 60, memory_mb: int = 1024, ephemeral_mb: int = 512) -> dict[str, str]:
    """A function's environment as the local runtime sets it from the function's configuration."""
    return {
        "AWS_LAMBDA_FUNCTION_NAME": "limited",
        TIMEOUT_VARIABLE: str(timeout_s),
        MEMORY_VARIABLE: str(memory_mb),
        EPHEMERAL_VARIABLE: str(ephemeral_mb),
    }


def error_of(payload: str) -> dict[str, str]:
    return json.loads(payload)


def test_an_invocation_past_its_timeout_is_stopped_with_lambdas_timeout_error() -> None:
    payload, errored, _ = run_in_subprocess(
        "tests.support.handlers.sleep", sized(timeout_s=1), {"seconds": 30}
    )
    assert errored
    error = error_of(payload)
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]


def test_temporary_files_past_the_ephemeral_storage_fail_with_no_space_left() -> None:
    """The spill file is unlinked at once (TemporaryFile): it counts all the same."""
    payload, errored, _ = run_in_subprocess(
        "tests.support.handlers.fill_tmp", sized(ephemeral_mb=512), {"mb": 600, "hold_s": 5}
    )
    assert errored
    error = error_of(payload)
    assert error["errorType"] == "OSError"
    assert "No space left on device" in error["errorMessage"] and "512 MB" in error["errorMessage"]


def test_within_its_limits_an_invocation_answers_and_its_temporary_folder_is_its_own() -> None:
    payload, errored, _ = run_in_subprocess(
        "tests.support.handlers.fill_tmp", sized(ephemeral_mb=512), {"mb": 8, "hold_s": 0}
    )
    assert not errored and json.loads(payload) == {"wrote_mb": 8}


def test_a_warm_worker_past_its_memory_is_killed_and_the_next_invoke_gets_a_new_one() -> None:
    pool = WarmPool(idle_s=60)
    env = sized(memory_mb=256)
    try:
        payload, errored, _ = pool("tests.support.handlers.hold_memory", env, {"mb": 400, "hold_s": 5})
        assert errored
        error = error_of(payload)
        assert error["errorType"] == "Runtime.ExitError"
        assert "signal: killed" in error["errorMessage"] and "256 MB" in error["errorMessage"]
        assert pool.pids == []  # the killed worker is gone, not reused
        payload, errored, _ = pool("tests.support.handlers.hold_memory", env, {"mb": 16, "hold_s": 0})
        assert not errored and json.loads(payload) == {"held_mb": 16}
    finally:
        pool.close()


def test_a_warm_workers_import_does_not_count_towards_the_timeout_but_the_invocation_does() -> None:
    pool = WarmPool(idle_s=60)
    env = sized(timeout_s=1)
    try:
        assert pool("tests.support.handlers.sleep", env, {"seconds": 0.1})[1] is False
        payload, errored, _ = pool("tests.support.handlers.sleep", env, {"seconds": 30})
        assert errored and error_of(payload)["errorType"] == "Sandbox.Timedout"
    finally:
        pool.close()
