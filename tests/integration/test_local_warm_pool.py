"""The local cloud's warm Lambda workers stay within bounds (issue 15, defect 11: the pool grew
to 67 processes and never shrank)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mixtune.local.warm import WarmPool

ROOT = Path(__file__).resolve().parents[2]
HANDLER = "tests.support.handlers.sleep"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return {"AWS_LAMBDA_FUNCTION_NAME": "slow"}


def test_concurrent_invokes_beyond_the_cap_wait_for_a_worker(env: dict[str, str]) -> None:
    pool = WarmPool(max_per_function=2, max_total=4, idle_s=60)
    replies: list[tuple[str, bool, str]] = []
    most = 0
    try:
        threads = [
            threading.Thread(target=lambda: replies.append(pool(HANDLER, env, {"seconds": 0.5})))
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            most = max(most, len(pool.pids))
            time.sleep(0.02)
    finally:
        pool.close()
    assert len(replies) == 5 and not any(errored for _, errored, _ in replies)
    assert 1 <= most <= 2


def test_idle_workers_retire(env: dict[str, str]) -> None:
    pool = WarmPool(idle_s=0.3)
    try:
        assert pool(HANDLER, env, {"seconds": 0})[1] is False
        assert len(pool.pids) == 1
        deadline = time.monotonic() + 10
        while pool.pids and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pool.pids == []
        assert pool(HANDLER, env, {"seconds": 0})[1] is False  # a new one starts when needed
    finally:
        pool.close()


def test_the_total_cap_retires_an_idle_worker_of_another_function(env: dict[str, str]) -> None:
    pool = WarmPool(max_total=1, idle_s=60)
    try:
        pool(HANDLER, env, {"seconds": 0})
        first = pool.pids
        pool(HANDLER, {**env, "AWS_LAMBDA_FUNCTION_NAME": "other"}, {"seconds": 0})
        assert len(pool.pids) == 1 and pool.pids != first
    finally:
        pool.close()
