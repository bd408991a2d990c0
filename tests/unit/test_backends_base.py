"""The backend contract: job spec validation, JSON job references, the registry, progress."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from mixtune.backends import (
    BackendError,
    JobRef,
    JobSpec,
    JobState,
    JobStatus,
    TrainingBackend,
    get_backend,
    job_name_for,
    register_backend,
    unregister_backend,
)
from mixtune.backends.base import read_progress
from mixtune.settings import Settings
from tests.support.jobs import job_spec

spec = functools.partial(job_spec, {"output_uri": "s3://b/out"})


@pytest.mark.parametrize("name", ["Run_1", "-run", "run-", "a" * 64, ""])
def test_job_spec_rejects_names_kubernetes_would_reject(name: str) -> None:
    with pytest.raises(ValidationError, match="job name"):
        spec(job_name=name)


def test_job_spec_rejects_unknown_entry_point_and_fields() -> None:
    with pytest.raises(ValidationError):
        spec(entry_point="serve")
    with pytest.raises(ValidationError):
        spec(gpus=2)


def test_job_name_for_makes_valid_distinct_names_from_free_text() -> None:
    long_a = job_name_for("Run_" + "x" * 80, "train")
    long_b = job_name_for("Run_" + "x" * 81, "train")
    for name in (job_name_for("Run 2026/11/28", "Train"), long_a, long_b):
        assert spec(job_name=name).job_name == name
    assert long_a != long_b
    assert job_name_for("run-1", "train") == "run-1-train"


def test_listed_input_uris_get_names_and_travel_as_environment() -> None:
    job = spec(input_uris=["s3://b/data.jsonl", "s3://b/eval.jsonl"], environment={"SEED": "3"})
    env = job.job_environment()
    assert env["MIXTUNE_INPUT_INPUT_0_URI"] == "s3://b/data.jsonl"
    assert env["MIXTUNE_INPUT_INPUT_1_URI"] == "s3://b/eval.jsonl"
    assert env["MIXTUNE_OUTPUT_URI"] == "s3://b/out"
    assert env["SEED"] == "3"


def test_job_ref_round_trips_through_json_text() -> None:
    ref = JobRef(backend="hyperpod", id="run-1-train", data={"namespace": "ml", "cluster": "hp"})
    text = json.dumps(ref.to_json())
    assert JobRef.from_json(text) == ref
    assert JobRef.from_json(json.loads(text)) == ref


def test_terminal_states() -> None:
    assert {s for s in JobState if s.terminal} == {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}


class FakeBackend:
    name = "fake"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def submit(self, spec: JobSpec) -> JobRef:
        return JobRef(backend=self.name, id=spec.job_name)

    def status(self, ref: JobRef) -> JobStatus:
        return JobStatus(state=JobState.SUCCEEDED)

    def cancel(self, ref: JobRef) -> None:
        return None


def test_registered_backend_is_built_with_the_given_settings() -> None:
    register_backend("fake", FakeBackend)
    try:
        settings = Settings(work_bucket="wb")
        backend = get_backend("fake", settings)
        assert isinstance(backend, TrainingBackend)
        assert backend.settings is settings  # type: ignore[attr-defined]
        assert backend.submit(spec()).id == "run-1-train"
    finally:
        unregister_backend("fake")


def test_builtin_backends_are_registered_and_unknown_names_are_clear_errors(tmp_path: Path) -> None:
    settings = Settings(local_workdir=str(tmp_path), hyperpod_cluster_name="hp", sagemaker_role_arn="arn:r")
    for name in ("local", "sagemaker", "hyperpod"):
        assert get_backend(name, settings).name == name
    with pytest.raises(BackendError, match="unknown training backend 'slurm'"):
        get_backend("slurm", settings)


def test_read_progress_returns_the_last_complete_line(tmp_path: Path) -> None:
    assert read_progress(str(tmp_path)) is None
    (tmp_path / "progress.jsonl").write_text(
        '{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo'
    )
    assert read_progress(str(tmp_path)) == {"step": 2, "loss": 1.5}


def test_backends_import_no_ml_frameworks() -> None:
    """Lambda code: importing every backend must not pull in torch, transformers or datasets."""
    import subprocess
    import sys

    probe = (
        "import sys, mixtune.backends.local, mixtune.backends.sagemaker, mixtune.backends.hyperpod;"
        "print(sorted({'torch', 'transformers', 'datasets', 'kubernetes'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_transient_backend_errors_are_the_pipelines_retryable_errors() -> None:
    from mixtune import errors
    from mixtune.backends import TransientError

    assert issubclass(TransientError, errors.TransientError)
    assert issubclass(TransientError, BackendError)
    assert TransientError.__name__ == "TransientError"  # the errorType the ASL retries on
    assert issubclass(BackendError, errors.MixtuneError)
