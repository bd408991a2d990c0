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
from collections.abc import Iterator
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
QUEUED_FILE = "queued"
LOCK_FILE = ".lock"
LOG_TAIL_LINES = 20
# Job runners this process started: reaped on every call, so none stays a zombie.
_CHILDREN: list[subprocess.Popen[bytes]] = []


def default_max_jobs() -> int:
    """Jobs that fit this machine at once: one per core, one per 2 GB of memory, at least 1."""
    cores = os.cpu_count() or 1
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory_gb = 4.0
    return max(1, min(cores, int(memory_gb // 2)))


def _reap() -> None:
    for child in list(_CHILDREN):
        if child.poll() is not None:
            _CHILDREN.remove(child)


def default_workdir() -> Path:
    return Path(tempfile.gettempdir()) / "mixtune-local-jobs"


class LocalBackend:
    name = NAME

    def __init__(
        self, workdir: str | Path | None = None, python: str = sys.executable, max_jobs: int = 0
    ) -> None:
        self.workdir = Path(workdir) if workdir else default_workdir()
        self.python = python
        # Jobs running at once; more wait in a queue (started by a later submit or status call).
        self.max_jobs = max_jobs or default_max_jobs()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(settings.local_workdir or None, max_jobs=settings.local_max_jobs)

    def job_dir(self, job_id: str) -> Path:
        return self.workdir / job_id

    def submit(self, spec: JobSpec) -> JobRef:
        """Start the job, or queue it when ``max_jobs`` run already."""
        job_dir = self.job_dir(spec.job_name)
        ref = JobRef(
            backend=NAME, id=spec.job_name, data={"job_dir": str(job_dir), "output_uri": spec.output_uri}
        )
        try:
            job_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            return ref  # already submitted: a retried launch must not start a second job
        (job_dir / "spec.json").write_text(spec.model_dump_json(indent=2))
        (job_dir / QUEUED_FILE).write_text(f"{time.time()}\n")
        self.start_queued()
        return ref

    def start_queued(self) -> list[str]:
        """Start queued jobs, oldest first, while fewer than ``max_jobs`` run; returns their names."""
        _reap()
        started: list[str] = []
        if not self.workdir.is_dir():
            return started
        with self._lock():
            running = sum(1 for job_dir in self._job_dirs() if self._running(job_dir))
            queued = sorted(
                (job_dir for job_dir in self._job_dirs() if (job_dir / QUEUED_FILE).exists()),
                key=lambda job_dir: float((job_dir / QUEUED_FILE).read_text() or 0),
            )
            for job_dir in queued[: max(0, self.max_jobs - running)]:
                self._start(job_dir, JobSpec.model_validate_json((job_dir / "spec.json").read_text()))
                started.append(job_dir.name)
        return started

    def _start(self, job_dir: Path, spec: JobSpec) -> None:
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
        _CHILDREN.append(process)
        (job_dir / PID_FILE).write_text(f"{process.pid}\n")
        (job_dir / QUEUED_FILE).unlink(missing_ok=True)

    def _job_dirs(self) -> list[Path]:
        return [path for path in self.workdir.iterdir() if path.is_dir()]

    def _running(self, job_dir: Path) -> bool:
        pid = self._pid(job_dir)
        return pid is not None and not (job_dir / EXIT_FILE).exists() and _alive(pid)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One process at a time counts and starts jobs (Lambda workers poll concurrently)."""
        import fcntl

        with open(self.workdir / LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def status(self, ref: JobRef) -> JobStatus:
        check_ref(ref, NAME)
        job_dir = self._existing_dir(ref)
        self.start_queued()
        progress = read_progress(ref.data.get("output_uri", ""))
        if (job_dir / CANCELLED_FILE).exists():
            return JobStatus(state=JobState.CANCELLED, reason="cancelled", progress=progress)
        if (job_dir / QUEUED_FILE).exists():
            return JobStatus(state=JobState.PENDING, reason=f"queued: {self.max_jobs} local job(s) running")
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
        (job_dir / QUEUED_FILE).unlink(missing_ok=True)
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
        _reap()

    def clear(self) -> int:
        """Stop every job still running and remove every job folder; returns how many.

        For a fresh start: a job folder marks its job as submitted, so a later run that asks
        for a job of the same name (runs are named after their data) would get the old one.
        """
        folders = self.stop_all()
        for job_dir in folders:
            shutil.rmtree(job_dir, ignore_errors=True)
        return len(folders)

    def stop_all(self) -> list[Path]:
        """Cancel every job still running or queued here, keeping the folders (their logs);
        returns the job folders. Jobs outlive the process that started them (a local cloud's
        Lambda worker that has since retired), so whoever owns the folder stops them by it."""
        if not self.workdir.is_dir():
            return []
        folders = [path for path in self.workdir.iterdir() if path.is_dir()]
        for job_dir in folders:
            self.cancel(JobRef(backend=NAME, id=job_dir.name, data={"job_dir": str(job_dir)}))
        return folders

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
