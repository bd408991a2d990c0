"""The ``local`` backend: the training image's entry points as detached subprocesses here.

Each job gets a folder ``<workdir>/<job name>/`` holding ``spec.json``, ``pid``, ``job.log``
and, once it ends, ``exit_code`` (written by :mod:`mixtune.backends.local_runner`). The job runs
in its own session, so it outlives the process that launched it (a Lambda invocation of the
local cloud, the CLI), and ``status``/``cancel`` from any later process work from that folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mixtune.backends.base import (
    ENTRY_MODULES,
    JobNotFoundError,
    JobRef,
    JobSpec,
    JobState,
    JobStatus,
    check_ref,
    read_progress,
)
from mixtune.backends.local_runner import EXIT_FILE, LOG_FILE
from mixtune.settings import Settings

NAME = "local"
PID_FILE = "pid"
CANCELLED_FILE = "cancelled"
LOG_TAIL_LINES = 20


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "mixtune-local-jobs"


class LocalBackend:
    name = NAME

    def __init__(self, workdir: str | Path | None = None, python: str = sys.executable) -> None:
        self.workdir = Path(workdir) if workdir else default_workdir()
        self.python = python

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(settings.local_workdir or None)

    def job_dir(self, job_id: str) -> Path:
        return self.workdir / job_id

    def submit(self, spec: JobSpec) -> JobRef:
        job_dir = self.job_dir(spec.job_name)
        ref = JobRef(
            backend=NAME, id=spec.job_name, data={"job_dir": str(job_dir), "output_uri": spec.output_uri}
        )
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            return ref  # already submitted: a retried launch must not start a second job
        (job_dir / "spec.json").write_text(spec.model_dump_json(indent=2))
        command = [self.python, "-m", ENTRY_MODULES[spec.entry_point], *spec.arguments]
        runner = [self.python, "-m", "mixtune.backends.local_runner", str(job_dir), "--", *command]
        # The whole environment passes through (AWS_ENDPOINT_URL and credentials included), so
        # the job reads and writes the same S3 (real or the local cloud's) as its launcher.
        env = {**os.environ, **spec.job_environment()}
        with open(job_dir / LOG_FILE, "ab") as log:
            process = subprocess.Popen(
                runner,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # own process group: survives us, cancel kills it whole
                close_fds=True,
            )
        (job_dir / PID_FILE).write_text(f"{process.pid}\n")
        return ref

    def status(self, ref: JobRef) -> JobStatus:
        check_ref(ref, NAME)
        job_dir = self._existing_dir(ref)
        progress = read_progress(ref.data.get("output_uri", ""))
        if (job_dir / CANCELLED_FILE).exists():
            return JobStatus(state=JobState.CANCELLED, reason="cancelled", progress=progress)
        exit_file = job_dir / EXIT_FILE
        if exit_file.exists():
            code = int(exit_file.read_text().strip() or "1")
            if code == 0:
                return JobStatus(state=JobState.SUCCEEDED, progress=progress)
            return JobStatus(
                state=JobState.FAILED,
                reason=f"exit code {code}: {self._log_tail(job_dir)}",
                progress=progress,
            )
        pid = self._pid(job_dir)
        if pid is None:
            return JobStatus(state=JobState.PENDING, progress=progress)
        if _alive(pid):
            return JobStatus(state=JobState.RUNNING, progress=progress)
        if exit_file.exists():  # it ended between the two checks
            return self.status(ref)
        return JobStatus(
            state=JobState.FAILED,
            reason=f"process {pid} ended without recording an exit code: {self._log_tail(job_dir)}",
            progress=progress,
        )

    def cancel(self, ref: JobRef) -> None:
        check_ref(ref, NAME)
        job_dir = self._existing_dir(ref)
        if (job_dir / EXIT_FILE).exists():
            return  # already finished
        (job_dir / CANCELLED_FILE).write_text(f"{time.time()}\n")
        pid = self._pid(job_dir)
        if pid is None or not _alive(pid):
            return
        try:
            os.killpg(pid, signal.SIGTERM)  # pid leads its own session, so it is the group id
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def clear(self) -> int:
        """Stop every job still running and remove every job folder; returns how many.

        For a fresh start: a job folder marks its job as submitted, so a later run that asks
        for a job of the same name (runs are named after their data) would get the old one.
        """
        if not self.workdir.is_dir():
            return 0
        folders = [path for path in self.workdir.iterdir() if path.is_dir()]
        for job_dir in folders:
            self.cancel(JobRef(backend=NAME, id=job_dir.name, data={"job_dir": str(job_dir)}))
            shutil.rmtree(job_dir, ignore_errors=True)
        return len(folders)

    def _existing_dir(self, ref: JobRef) -> Path:
        job_dir = Path(ref.data.get("job_dir") or self.job_dir(ref.id))
        if not job_dir.is_dir():
            raise JobNotFoundError(f"local job {ref.id!r} not found (no folder {job_dir})")
        return job_dir

    @staticmethod
    def _pid(job_dir: Path) -> int | None:
        try:
            return int((job_dir / PID_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @staticmethod
    def _log_tail(job_dir: Path) -> str:
        try:
            lines = (job_dir / LOG_FILE).read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(lines[-LOG_TAIL_LINES:]) or "(empty log)"


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (ended, not yet reaped by its parent) counts as ended."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():  # Linux: read the state, which also reveals zombies
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return False
        return fields[0] not in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
