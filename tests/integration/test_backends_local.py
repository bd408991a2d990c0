"""The local backend: detached subprocess jobs that any later process can poll and cancel.

A tiny stand-in entry point module (written to tmp_path, put on PYTHONPATH) plays the training
image, so these tests need no model.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mixtune.backends import (
    ENTRY_MODULES,
    JobNotFoundError,
    JobRef,
    JobSpec,
    JobState,
    JobStatus,
    get_backend,
)
from mixtune.backends.local import LocalBackend, _alive
from mixtune.settings import Settings
from tests.support.jobs import job_spec

FAKE_ENTRY = """
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
out = args["--output"]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "env.json"), "w") as f:
    json.dump({k: v for k, v in os.environ.items() if k.startswith(("MIXTUNE_", "AWS_"))}, f)
with open(os.path.join(out, "progress.jsonl"), "w") as f:
    f.write(json.dumps({"step": 1, "loss": 2.5}) + "\\n")
time.sleep(float(args.get("--sleep", "0")))
print("fake job says:", args.get("--say", "hello"), file=sys.stderr)
sys.exit(int(args.get("--exit", "0")))
"""
MODULE = "mixtune_fake_entry"
POLL_LIMIT_S = 30


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalBackend]:
    code = tmp_path / "code"
    code.mkdir()
    (code / f"{MODULE}.py").write_text(FAKE_ENTRY)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setitem(ENTRY_MODULES, "train", MODULE)
    workdir = tmp_path / "jobs"
    yield LocalBackend(workdir)
    for pid_file in workdir.glob("*/pid"):  # stop whatever a failed test left running
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.killpg(int(pid_file.read_text()), signal.SIGKILL)


def job(tmp_path: Path, name: str, *args: str) -> JobSpec:
    out = tmp_path / "out" / name
    return job_spec(job_name=name, arguments=["--output", str(out), *args], output_uri=str(out))


def wait_terminal(backend: LocalBackend, ref: JobRef) -> JobStatus:
    deadline = time.monotonic() + POLL_LIMIT_S
    while time.monotonic() < deadline:
        status = backend.status(ref)
        if status.state.terminal:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {ref.id} did not finish: {backend.status(ref)}")


def test_job_outlives_the_launching_process_and_a_new_process_reads_its_success(
    backend: LocalBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    spec = job(tmp_path, "ok-job", "--sleep", "1")
    launcher = (
        "import sys; from mixtune.backends import ENTRY_MODULES, JobSpec; from mixtune.backends.local import LocalBackend;"
        f"ENTRY_MODULES['train'] = {MODULE!r};"
        "print(LocalBackend(sys.argv[1]).submit(JobSpec.model_validate_json(sys.argv[2])).model_dump_json())"
    )
    launched = subprocess.run(
        [sys.executable, "-c", launcher, str(backend.workdir), spec.model_dump_json()],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    ref = JobRef.model_validate_json(launched.stdout)  # the launcher has exited by now

    status = wait_terminal(LocalBackend(backend.workdir), ref)

    assert status.state == JobState.SUCCEEDED, status.reason
    assert status.progress == {"step": 1, "loss": 2.5}
    env = json.loads((Path(spec.output_uri) / "env.json").read_text())
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert env["MIXTUNE_OUTPUT_URI"] == spec.output_uri
    assert env["MIXTUNE_JOB_NAME"] == "ok-job"


def test_failed_job_reports_its_exit_code_and_log_tail(backend: LocalBackend, tmp_path: Path) -> None:
    ref = backend.submit(job(tmp_path, "bad-job", "--exit", "3", "--say", "dataset-missing"))
    status = wait_terminal(backend, ref)
    assert status.state == JobState.FAILED
    assert status.reason is not None
    assert "exit code 3" in status.reason
    assert "fake job says: dataset-missing" in status.reason


def test_cancel_kills_the_running_job(backend: LocalBackend, tmp_path: Path) -> None:
    ref = backend.submit(job(tmp_path, "long-job", "--sleep", "120"))
    assert backend.status(ref).state in (JobState.PENDING, JobState.RUNNING)
    pid = int((backend.job_dir(ref.id) / "pid").read_text())

    backend.cancel(ref)

    assert backend.status(ref).state == JobState.CANCELLED
    assert not _alive(pid)
    backend.cancel(ref)  # cancelling again is harmless


def test_repeated_submit_returns_the_same_job_without_a_second_process(
    backend: LocalBackend, tmp_path: Path
) -> None:
    spec = job(tmp_path, "once-job", "--sleep", "0")
    first = backend.submit(spec)
    pid = (backend.job_dir(first.id) / "pid").read_text()
    second = backend.submit(spec)
    assert second == first
    assert (backend.job_dir(first.id) / "pid").read_text() == pid
    assert wait_terminal(backend, second).state == JobState.SUCCEEDED


def test_clear_stops_running_jobs_and_lets_a_same_named_job_start_again(
    backend: LocalBackend, tmp_path: Path
) -> None:
    finished = backend.submit(job(tmp_path, "done-job", "--say", "first"))
    assert wait_terminal(backend, finished).state == JobState.SUCCEEDED
    running = backend.submit(job(tmp_path, "long-job", "--sleep", "120"))
    pid = int((backend.job_dir(running.id) / "pid").read_text())

    assert backend.clear() == 2

    assert not _alive(pid)
    assert not backend.job_dir("done-job").exists()
    again = backend.submit(job(tmp_path, "done-job", "--say", "second"))
    assert wait_terminal(backend, again).state == JobState.SUCCEEDED
    assert "fake job says: second" in (backend.job_dir("done-job") / "job.log").read_text()


def test_unknown_job_is_a_clear_not_found_error(backend: LocalBackend) -> None:
    with pytest.raises(JobNotFoundError, match="no-such-job"):
        backend.status(JobRef(backend="local", id="no-such-job"))


def test_get_backend_uses_the_local_workdir_setting(tmp_path: Path) -> None:
    backend = get_backend("local", Settings(local_workdir=str(tmp_path / "wd")))
    assert isinstance(backend, LocalBackend)
    assert backend.workdir == tmp_path / "wd"


def test_jobs_beyond_the_limit_wait_in_a_queue_and_start_when_a_slot_frees(
    backend: LocalBackend, tmp_path: Path
) -> None:
    """Issue 15, defect 11: the local backend ran 22 jobs at once."""
    backend.max_jobs = 1
    first = backend.submit(job(tmp_path, "first-job", "--sleep", "1.5"))
    second = backend.submit(job(tmp_path, "second-job"))
    status = backend.status(second)
    assert status.state == JobState.PENDING and "queued" in (status.reason or "")
    assert not (backend.job_dir("second-job") / "pid").exists()  # never two at once
    assert wait_terminal(backend, first).state == JobState.SUCCEEDED
    assert wait_terminal(backend, second).state == JobState.SUCCEEDED  # started by a later status call


def test_a_queued_job_can_be_cancelled_and_never_starts(backend: LocalBackend, tmp_path: Path) -> None:
    backend.max_jobs = 1
    first = backend.submit(job(tmp_path, "busy-job", "--sleep", "1"))
    queued = backend.submit(job(tmp_path, "queued-job"))
    backend.cancel(queued)
    assert wait_terminal(backend, first).state == JobState.SUCCEEDED
    assert backend.status(queued).state == JobState.CANCELLED
    assert not (backend.job_dir("queued-job") / "pid").exists()


def test_finished_job_runners_are_reaped_not_left_as_zombies(backend: LocalBackend, tmp_path: Path) -> None:
    import psutil

    ref = backend.submit(job(tmp_path, "reaped-job"))
    assert wait_terminal(backend, ref).state == JobState.SUCCEEDED
    pid = int((backend.job_dir("reaped-job") / "pid").read_text())
    deadline = time.monotonic() + 10
    while psutil.pid_exists(pid) and time.monotonic() < deadline:
        backend.status(ref)  # every call reaps what has ended
        time.sleep(0.1)
    assert not psutil.pid_exists(pid), psutil.Process(pid).status()
