"""Lambda's limits in the local cloud: each invocation's timeout, memory and ``/tmp``.

Lambda stops an invocation that runs past the function's timeout ("Task timed out after
N.NN seconds", error type ``Sandbox.Timedout``), kills a runtime that uses more memory than
the function has ("Runtime exited with error: signal: killed", ``Runtime.ExitError``), and
fails a write past the function's ephemeral storage ("[Errno 28] No space left on
device"). The local cloud's runners (warm workers, one-shot subprocesses) run each
invocation under a :class:`Watch` that does the same to the worker process: it samples the
process's resident memory and the invocation's own temporary folder (each invocation gets a
fresh ``TMPDIR``), and kills the process at the first limit passed; the runner then answers
with Lambda's error. Memory is the worker's RSS (not its children: a training job a handler
starts locally would run elsewhere on AWS); sampling every 50 ms can let a short spike
through, which Lambda's cgroup would not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# What the runtime tells the runner about the function (set from moto's function by
# mixtune.local.invoke.lambda_runtime): the timeout, and the ephemeral storage in MB.
TIMEOUT_VARIABLE = "_MIXTUNE_LOCAL_LAMBDA_TIMEOUT_S"
EPHEMERAL_VARIABLE = "_MIXTUNE_LOCAL_LAMBDA_EPHEMERAL_MB"
MEMORY_VARIABLE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"  # Lambda's own variable
SAMPLE_EVERY_S = 0.05
MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    timeout_s: float
    memory_mb: int
    ephemeral_mb: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Limits:
        return cls(
            timeout_s=float(env.get(TIMEOUT_VARIABLE, "60")),
            memory_mb=int(env.get(MEMORY_VARIABLE, "128")),
            ephemeral_mb=int(env.get(EPHEMERAL_VARIABLE, "512")),
        )


@dataclass(frozen=True)
class Breach:
    """A limit an invocation passed: Lambda's error for it."""

    error_type: str
    message: str

    def payload(self) -> str:
        return json.dumps({"errorType": self.error_type, "errorMessage": self.message})


def temp_bytes(folder: Path, pid: int | None = None) -> int:
    """Bytes of the files under ``folder``, with the files a process holds open there without
    a name (``tempfile.TemporaryFile`` unlinks at once, so a listing never sees them): the
    open descriptors in ``/proc/<pid>/fd`` are statted too."""
    sizes: dict[tuple[int, int], int] = {}
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):  # removed while we looked
                info = os.stat(os.path.join(root, name))
                sizes[(info.st_dev, info.st_ino)] = info.st_size
    if pid is not None:
        prefix = str(folder)
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                        info = os.stat(f"/proc/{pid}/fd/{fd}")
                        sizes[(info.st_dev, info.st_ino)] = info.st_size
    return sum(sizes.values())


def rss_bytes(pid: int) -> int:
    import psutil

    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


class Watch:
    """Watch one invocation in process ``pid``: past a limit, kill the process (SIGKILL, as
    Lambda does) and keep the breach. Use as a context manager around the invocation; the
    peaks it saw are kept too (``peak_rss``, ``peak_tmp``)."""

    def __init__(self, pid: int, limits: Limits, tmpdir: Path, every: float = SAMPLE_EVERY_S) -> None:
        self.pid, self.limits, self.tmpdir, self.every = pid, limits, tmpdir, every
        self.request_id = str(uuid.uuid4())
        self.breach: Breach | None = None
        self.peak_rss = self.peak_tmp = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lambda-limits {pid}", daemon=True)

    def __enter__(self) -> Watch:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._halt.set()
        self._thread.join()

    def _run(self) -> None:
        limits = self.limits
        while not self._halt.is_set():
            elapsed = time.monotonic() - self._started
            rss = rss_bytes(self.pid)
            tmp = temp_bytes(self.tmpdir, self.pid)
            self.peak_rss, self.peak_tmp = max(self.peak_rss, rss), max(self.peak_tmp, tmp)
            if elapsed > limits.timeout_s:
                self._kill(
                    "Sandbox.Timedout",
                    f"RequestId: {self.request_id} Error: Task timed out after {limits.timeout_s:.2f} seconds",
                )
            elif rss > limits.memory_mb * MB:
                self._kill(
                    "Runtime.ExitError",
                    f"RequestId: {self.request_id} Error: Runtime exited with error: signal: killed "
                    f"(local cloud: {rss / MB:.0f} MB resident, over the function's {limits.memory_mb} MB)",
                )
            elif tmp > limits.ephemeral_mb * MB:
                self._kill(
                    "OSError",
                    f"[Errno 28] No space left on device (local cloud: the invocation's temporary files "
                    f"reached {tmp / MB:.0f} MB, over the function's {limits.ephemeral_mb} MB of ephemeral storage)",
                )
            if self.breach is not None:
                return
            self._halt.wait(self.every)

    def _kill(self, error_type: str, message: str) -> None:
        self.breach = Breach(error_type, message)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


@contextlib.contextmanager
def invocation_tmpdir(base: Path | None = None) -> Any:
    """A fresh temporary folder for one invocation, removed afterwards (Lambda's /tmp, per invocation)."""
    path = Path(tempfile.mkdtemp(prefix="mixtune-lambda-tmp-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
