"""Run the local cloud as its own process (`mixtune local up`) and stop it by PID."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mixtune.local.cloud import stop_processes
from mixtune.local.state import LocalState, read_state

# `python -m mixtune.cli` would load the CLI module twice (as __main__ and as mixtune.cli), and
# its UsageError would then escape main(); call main() of the one module instead.
MIXTUNE_COMMAND = (
    sys.executable,
    "-c",
    "import sys; from mixtune.cli import main; sys.exit(main(sys.argv[1:]))",
)


def wait_for_state(
    state_dir: Path | str, pid: int, proc: subprocess.Popen[bytes] | None, timeout_s: float
) -> LocalState:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state is not None and state.pid == pid:
            return state
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the local cloud exited with code {proc.returncode} before it was ready")
        time.sleep(0.1)
    raise TimeoutError(f"the local cloud (pid {pid}) was not ready within {timeout_s:.0f} s")


def _exited(process: Any) -> bool:
    """Gone, or a zombie: exited and waiting for its parent (maybe not us) to reap it."""
    import psutil

    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop_pid(pid: int, timeout_s: float = 20.0) -> bool:
    """SIGTERM the local cloud ``pid`` (it stops its workers and jobs), then kill leftovers.

    Returns False when no such process was running.
    """
    import psutil

    try:
        process = psutil.Process(pid)
        descendants = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while not _exited(process) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftovers = [p for p in [process, *descendants] if not _exited(p)]
    stop_processes(leftovers, timeout_s=5)
    return True


class LocalCloudProcess:
    """``mixtune local up`` in a subprocess, for tests and scripts: ``with LocalCloudProcess(dir) as state``."""

    def __init__(
        self,
        state_dir: Path | str,
        lambda_mode: str = "warm",
        env: dict[str, str | None] | None = None,
        log_path: Path | str | None = None,
        ready_timeout_s: float = 60.0,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.lambda_mode = lambda_mode
        self.env = env or {}
        self.log_path = Path(log_path) if log_path else self.state_dir / "local-up.log"
        self.ready_timeout_s = ready_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.state: LocalState | None = None

    def start(self) -> LocalState:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            *MIXTUNE_COMMAND, "local", "up", "--port", "0", "--api-port", "0",
            "--state-dir", str(self.state_dir), "--lambda-mode", self.lambda_mode,
        ]  # fmt: skip
        env = {**os.environ, **self.env}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={key: value for key, value in env.items() if value is not None},  # None: unset
            )
        try:
            self.state = wait_for_state(self.state_dir, self.proc.pid, self.proc, self.ready_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.state

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_pid(self.proc.pid)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalState:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
