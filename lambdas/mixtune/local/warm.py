"""Warm Lambda workers: one Python process per function kept between invokes.

A fresh interpreter per invoke costs a second or more of imports; the state machine's poll
loops invoke often. Like Lambda's execution environments, a worker serves one invoke at a
time with its function's own environment, a concurrent invoke gets another worker (up to a
cap per function and in all), and idle workers retire.
Each worker's stderr (the function's logs) goes to ``<log_dir>/<function>.log``.
Each invocation runs within its function's timeout, memory and ephemeral storage, with a
``TMPDIR`` of its own (:mod:`mixtune.local.limits`); a worker killed past a limit is replaced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from mixtune.local.limits import Limits, Watch, invocation_tmpdir

WorkerKey = tuple[str, str]  # (handler, environment as JSON)
OVERDUE_S = 30.0  # how long an invoke waits at the total cap before a worker is started anyway


class _Worker:
    def __init__(self, handler: str, env: dict[str, str], log: IO[str]) -> None:
        self.limits = Limits.from_env(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mixtune.local.lambda_worker", "--serve", handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **env},
        )
        self._ready = False

    def wait_ready(self) -> bool:
        """Wait for the worker's init (its handler imported), which, as in Lambda, does not
        count towards an invocation's timeout; False when it died instead."""
        if not self._ready:
            assert self.proc.stdout is not None
            self._ready = bool(self.proc.stdout.readline())
        return self._ready

    def invoke(self, event: Any) -> tuple[str, bool] | None:
        """The reply (a Lambda error when the invocation passed one of its function's limits:
        the worker is killed then), or None when the worker died (its process is then gone)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if not self.wait_ready():
            self.stop()
            return None
        with invocation_tmpdir() as tmpdir, Watch(self.proc.pid, self.limits, tmpdir) as watch:
            try:
                self.proc.stdin.write(json.dumps({"event": event, "tmpdir": str(tmpdir)}) + "\n")
                self.proc.stdin.flush()
                line = self.proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
        if watch.breach is not None:
            self.stop()
            return watch.breach.payload(), True
        if not line:
            self.stop()
            return None
        reply = json.loads(line)
        return reply["payload"], bool(reply["errored"])

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


class WarmPool:
    """A :data:`mixtune.local.invoke.Runner` that reuses worker processes, within bounds.

    Like Lambda's execution environments: at most ``max_per_function`` workers per function
    (reserved concurrency) and ``max_total`` in all; an invoke beyond them waits for a worker
    (an idle worker of another function is retired to make room); a worker idle for
    ``idle_s`` retires.
    """

    def __init__(
        self,
        log_dir: Path | None = None,
        max_per_function: int = 4,
        max_total: int = 16,
        idle_s: float = 120.0,
    ) -> None:
        self._log_dir = log_dir
        self.max_per_function = max_per_function
        self.max_total = max_total
        self.idle_s = idle_s
        self._idle: dict[WorkerKey, list[tuple[float, _Worker]]] = {}
        self._busy: dict[WorkerKey, int] = {}
        self._all: list[_Worker] = []
        self._logs: dict[str, IO[str]] = {}
        self._changed = threading.Condition()
        self._closed = False
        self._reaper = threading.Thread(target=self._retire_idle_loop, name="warm-pool-reaper", daemon=True)
        self._reaper.start()

    def _log_for(self, env: dict[str, str]) -> IO[str]:
        name = env.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        if name not in self._logs:
            if self._log_dir is None:
                self._logs[name] = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
            else:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                self._logs[name] = open(self._log_dir / f"{name}.log", "a")  # noqa: SIM115
        return self._logs[name]

    def _count(self, key: WorkerKey) -> int:
        return self._busy.get(key, 0) + len(self._idle.get(key, []))

    def _acquire(self, key: WorkerKey, handler: str, env: dict[str, str]) -> _Worker:
        waiting_since = time.monotonic()
        with self._changed:
            while True:
                if self._closed:
                    raise RuntimeError("the Lambda worker pool is closed")
                idle = self._idle.get(key)
                if idle:
                    _, worker = idle.pop()
                    break
                if self._count(key) < self.max_per_function:
                    if len(self._all) >= self.max_total:
                        self._retire_one_idle()
                    # Past the total cap only when every worker stayed busy for a while: a
                    # handler that synchronously invokes another (on_failure -> mark_failed)
                    # must not wait forever for a worker its own callers hold.
                    overdue = time.monotonic() - waiting_since > OVERDUE_S
                    if len(self._all) < self.max_total or overdue:
                        worker = _Worker(handler, env, self._log_for(env))
                        self._all.append(worker)
                        break
                self._changed.wait(timeout=1.0)  # throttled: wait for a worker to come free
            self._busy[key] = self._busy.get(key, 0) + 1
            return worker

    def _release(self, key: WorkerKey, worker: _Worker | None) -> None:
        """Back to the idle list (None: the worker died and is gone)."""
        with self._changed:
            self._busy[key] -= 1
            if worker is None:
                pass
            elif self._closed:
                worker.stop()
            else:
                self._idle.setdefault(key, []).append((time.monotonic(), worker))
            self._changed.notify_all()

    def _retire_one_idle(self) -> None:
        """Stop the longest-idle worker of any function (called holding the lock)."""
        oldest = min(
            ((since, key) for key, idle in self._idle.items() for since, _ in idle[:1]), default=None
        )
        if oldest is None:
            return
        _, worker = self._idle[oldest[1]].pop(0)
        self._all.remove(worker)
        worker.stop()

    def retire_idle(self, now: float | None = None) -> int:
        """Stop workers idle longer than ``idle_s``; returns how many."""
        now = time.monotonic() if now is None else now
        retired: list[_Worker] = []
        with self._changed:
            for key, idle in self._idle.items():
                keep = [(since, worker) for since, worker in idle if now - since < self.idle_s]
                retired += [worker for since, worker in idle if now - since >= self.idle_s]
                self._idle[key] = keep
            for worker in retired:
                self._all.remove(worker)
            self._changed.notify_all()
        for worker in retired:
            worker.stop()
        return len(retired)

    def _retire_idle_loop(self) -> None:
        while not self._closed:
            time.sleep(min(5.0, max(0.1, self.idle_s / 2)))
            self.retire_idle()

    def __call__(self, handler: str, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
        key = (handler, json.dumps(env, sort_keys=True))
        worker = self._acquire(key, handler, env)
        reply = worker.invoke(event)
        if reply is None or not worker.alive:  # died, or killed past a limit
            with self._changed:
                if worker in self._all:  # close() may have taken every worker meanwhile
                    self._all.remove(worker)
            self._release(key, None)
        else:
            self._release(key, worker)
        if reply is None:
            message = f"the worker for {handler} exited; see its log"
            return json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}), True, ""
        return reply[0], reply[1], ""

    @property
    def pids(self) -> list[int]:
        with self._changed:
            return [worker.proc.pid for worker in self._all if worker.proc.poll() is None]

    def close(self) -> None:
        with self._changed:
            self._closed = True
            workers, self._all, self._idle = self._all, [], {}
            self._changed.notify_all()
        for worker in workers:
            worker.stop()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
