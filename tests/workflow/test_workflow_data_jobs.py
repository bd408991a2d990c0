"""Data steps too large for Lambda (issue 14): the real ASL in moto, the real handlers in this
process, and prepare and mix jobs that run the real `mixtune prepare` / `mixtune mix` with the
arguments the pipeline gives them (the fake backend runs them at submit)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from mixtune import layout, storage
from mixtune.sample_data import support_intents
from tests.workflow.test_workflow_pipeline import drop_dataset


@pytest.fixture
def low_thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every dataset is 'large': over both thresholds."""
    from mixtune.settings import get_settings

    monkeypatch.setenv("MIXTUNE_PREPARE_LAMBDA_MAX_BYTES", "100")
    monkeypatch.setenv("MIXTUNE_MIX_LAMBDA_MAX_BYTES", "100")
    get_settings.cache_clear()


def _rows(n: int = 60, seed: int = 1) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in support_intents(n, seed=seed)).encode()


def test_a_dataset_over_the_threshold_is_prepared_and_mixed_by_jobs_and_the_run_succeeds(
    stack: Any, low_thresholds: None
) -> None:
    result = drop_dataset(stack, "large")
    # The prepare function measured the object and handed it on: the execution starts at the job.
    assert result["status"] == "PENDING" and result["execution_arn"], result
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution
    run = stack.repo().get(result["run_id"])
    assert run.status == "SUCCEEDED"
    prepare, mix = run.lineage.placement["prepare"], run.lineage.placement["mix"]
    assert prepare.runs_on == "job" and "over the Lambda threshold of 100 bytes" in prepare.reason
    assert prepare.input_bytes and prepare.input_bytes > 100
    assert mix.runs_on == "job" and "over the Lambda threshold" in mix.reason
    assert stack.plan.submitted[:2] == ["prepare", "mix"]
    assert {"prepare", "mix", "smoke", "train"} <= set(run.lineage.job_ids)
    entered = stack.states_entered(result["execution_arn"])
    for state in ("PrepareLaunch", "PreparePoll", "PrepareConclude", "MixLaunch", "MixPoll", "MixConclude"):
        assert state in entered, state
    # What the jobs wrote is recorded as the Lambda path records it.
    folder = layout.dataset_folder("mixtune-work", run.run_id)
    assert run.lineage.prepared_uri == folder and run.lineage.report_uri == layout.prepare_report(folder)
    assert run.lineage.input_sha256 and run.lineage.output_sha256[layout.PREPARED]
    assert run.lineage.output_sha256[layout.MIXED] == storage.sha256_of(run.lineage.mixed_uri)
    assert storage.exists(run.lineage.manifest_uri)
    (message,) = stack.messages()
    assert message["Message"]["status"] == "SUCCEEDED"


def test_a_dataset_the_prepare_job_rejects_is_rejected_and_announced_and_nothing_is_trained(
    stack: Any, low_thresholds: None
) -> None:
    bad = b"".join(json.dumps({"text": f"no label {i}"}).encode() + b"\n" for i in range(30))
    result = drop_dataset(stack, "bad-large", bad)
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED"  # the verdict is a result, not a failure
    run = stack.repo().get(result["run_id"])
    assert run.status == "REJECTED"
    assert "DataRejected" in stack.states_entered(result["execution_arn"])
    assert stack.plan.submitted == ["prepare"]
    (message,) = stack.messages()
    assert message["Message"]["status"] == "REJECTED"


def test_a_prepare_job_that_fails_ends_the_run_failed_with_its_cause(
    stack: Any, low_thresholds: None
) -> None:
    stack.plan.fail_steps["prepare"] = "the instance was reclaimed"
    result = drop_dataset(stack, "doomed")
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "FAILED"
    run = stack.repo().get(result["run_id"])
    assert run.status == "FAILED" and run.failure.error == "JobFailedError"
    assert "the instance was reclaimed" in run.failure.cause
    (message,) = stack.messages()
    assert message["Message"]["status"] == "FAILED"


def test_a_prepare_that_runs_out_of_temporary_disk_in_lambda_is_taken_over_by_a_job(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SpillBudgetExceeded never leaves a run stuck: the Lambda path stops cleanly and a job
    prepares the same data (the job's disk is the machine's)."""
    from mixtune.runs import lifecycle
    from mixtune.settings import get_settings

    # Every kept record past the first spills (24 bytes each), and /tmp holds 100 bytes.
    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", json.dumps({"prepare": {"dedupe_memory_digests": 1}}))
    monkeypatch.setattr(lifecycle, "temp_budget_bytes", lambda settings: 100)
    get_settings.cache_clear()
    result = drop_dataset(stack, "spills")
    assert result["status"] == "PENDING"
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution
    run = stack.repo().get(result["run_id"])
    assert run.status == "SUCCEEDED"
    placement = run.lineage.placement["prepare"]
    assert placement.runs_on == "job"
    assert "ran out of temporary disk" in placement.reason and "spill_budget_bytes=100" in placement.reason
    assert run.lineage.placement["mix"].runs_on == "lambda"


def test_a_small_dataset_stays_in_lambda_and_the_run_says_why(stack: Any) -> None:
    result = drop_dataset(stack, "small")
    assert result["status"] == "PREPARED"
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED"
    run = stack.repo().get(result["run_id"])
    for step in ("prepare", "mix"):
        assert run.lineage.placement[step].runs_on == "lambda"
        assert "within the Lambda threshold" in run.lineage.placement[step].reason
    assert "prepare" not in stack.plan.submitted and "mix" not in stack.plan.submitted
    assert "PrepareLaunch" not in stack.states_entered(result["execution_arn"])


def test_a_parquet_drop_is_prepared_by_a_job_and_the_run_succeeds(stack: Any) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    rows = support_intents(60, seed=3)
    table = pa.Table.from_pylist(rows)
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    result = drop_dataset(stack, "tickets", buffer.getvalue(), suffix="parquet")
    assert result["status"] == "PENDING"
    execution = stack.wait_for_execution(result["execution_arn"])
    assert execution["status"] == "SUCCEEDED", execution
    run = stack.repo().get(result["run_id"])
    assert run.status == "SUCCEEDED"
    assert "Parquet" in run.lineage.placement["prepare"].reason
    report = json.loads(storage.read_bytes(run.lineage.report_uri))
    assert report["format"] == "parquet" and report["counts"]["input"] == 60


@pytest.mark.parametrize("path", ["lambda", "job"])
def test_a_record_longer_than_the_training_length_is_rejected_in_the_pipeline_with_its_line(
    stack: Any, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """In the pipeline prepare.max_tokens defaults to the run's train.max_length, whether the
    dataset is prepared in Lambda or by a job: the trainer would cut the long record's answer."""
    from mixtune.settings import get_settings

    monkeypatch.setenv("MIXTUNE_DEFAULT_RUN_CONFIG", json.dumps({"train": {"max_length": 256}}))
    if path == "job":
        monkeypatch.setenv("MIXTUNE_PREPARE_LAMBDA_MAX_BYTES", "100")
    get_settings.cache_clear()
    rows = support_intents(60, seed=5)
    rows[6] = {"text": "please help " * 2000, "intent": rows[6]["intent"]}  # line 7: ~4,000 tokens
    result = drop_dataset(stack, "long", "".join(json.dumps(row) + "\n" for row in rows).encode())
    if result["execution_arn"]:
        stack.wait_for_execution(result["execution_arn"])
    run = stack.repo().get(result["run_id"])
    assert run.lineage.placement["prepare"].runs_on == path
    report = json.loads(storage.read_bytes(run.lineage.report_uri))
    assert report["options"]["max_tokens"] == 256
    assert [(e["line"], e["rule"]) for e in report["errors"]] == [(7, "max_tokens")]
    assert report["counts"]["rejected"] == 1
