"""Warm Lambda workers: one Python process per function kept between invokes.

A fresh interpreter per invoke costs a second or more of imports; the state machine's poll
loops invoke often. Like Lambda's execution environments, a worker serves one invoke at a
time with its function's own environment, and a concurrent invoke gets another worker.
Each worker's stderr (the function's logs) goes to ``<log_dir>/<function>.log``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

WorkerKey = tuple[str, str]  # (handler, environment as JSON)


class _Worker:
    def __init__(self, handler: str, env: dict[str, str], log: IO[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mixtune.local.lambda_worker", "--serve", handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **env},
        )

    def invoke(self, event: Any) -> tuple[str, bool] | None:
        """The reply, or None when the worker died (its process is then gone)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(event) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            self.stop()
            return None
        reply = json.loads(line)
        return reply["payload"], bool(reply["errored"])

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
    """A :data:`mixtune.local.invoke.Runner` that reuses worker processes."""

    def __init__(self, log_dir: Path | None = None) -> None:
        self._log_dir = log_dir
        self._idle: dict[WorkerKey, list[_Worker]] = {}
        self._all: list[_Worker] = []
        self._logs: dict[str, IO[str]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def _log_for(self, env: dict[str, str]) -> IO[str]:
        name = env.get("AWS_LAMBDA_FUNCTION_NAME", "function")
        if name not in self._logs:
            if self._log_dir is None:
                self._logs[name] = open(os.devnull, "w")  # noqa: SIM115 (closed in close())
            else:
                self._log_dir.mkdir(parents=True, exist_ok=True)
                self._logs[name] = open(self._log_dir / f"{name}.log", "a")  # noqa: SIM115
        return self._logs[name]

    def _acquire(self, key: WorkerKey, handler: str, env: dict[str, str]) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the Lambda worker pool is closed")
            idle = self._idle.setdefault(key, [])
            if idle:
                return idle.pop()
            worker = _Worker(handler, env, self._log_for(env))
            self._all.append(worker)
            return worker

    def _release(self, key: WorkerKey, worker: _Worker) -> None:
        with self._lock:
            if self._closed:
                worker.stop()
            else:
                self._idle.setdefault(key, []).append(worker)

    def __call__(self, handler: str, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
        key = (handler, json.dumps(env, sort_keys=True))
        worker = self._acquire(key, handler, env)
        reply = worker.invoke(event)
        if reply is None:
            with self._lock:
                self._all.remove(worker)
            message = f"the worker for {handler} exited; see its log"
            return json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}), True, ""
        self._release(key, worker)
        return reply[0], reply[1], ""

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [worker.proc.pid for worker in self._all if worker.proc.poll() is None]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all, self._idle = self._all, [], {}
        for worker in workers:
            worker.stop()
        for log in self._logs.values():
            log.close()
        self._logs.clear()
