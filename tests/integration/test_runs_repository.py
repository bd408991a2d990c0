"""The runs repository against moto and DynamoDB Local (same tests, both back ends)."""

from __future__ import annotations

import pytest

from mixtune.errors import IllegalTransition, RunAlreadyExists, RunNotFound
from mixtune.runs import Baseline, Failure, Lineage, Promoted, Run, RunConfig, RunsRepository, RunStatus


def _run(run_id: str = "support-0001", dataset: str = "support", created_at: str | None = None) -> Run:
    extra = {"created_at": created_at} if created_at else {}
    return Run(
        run_id=run_id,
        dataset=dataset,
        config=RunConfig(poll_seconds=1, max_polls=5),
        lineage=Lineage(source_uri=f"s3://raw/incoming/{dataset}.jsonl"),
        **extra,
    )


def test_create_then_get_round_trips_the_run(runs_repo: RunsRepository) -> None:
    run = _run()
    runs_repo.create(run)
    stored = runs_repo.get(run.run_id)
    assert stored == run


def test_create_refuses_an_existing_run_id(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    with pytest.raises(RunAlreadyExists):
        runs_repo.create(_run())


def test_get_of_an_unknown_run_raises_run_not_found(runs_repo: RunsRepository) -> None:
    with pytest.raises(RunNotFound):
        runs_repo.get("nope")
    assert runs_repo.find("nope") is None


def test_legal_transitions_move_the_status_and_merge_lineage(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    runs_repo.transition(
        "support-0001",
        RunStatus.PREPARED,
        stage="prepare",
        lineage={"input_sha256": "abc", "output_sha256": {"prepared.jsonl": "def"}},
    )
    runs_repo.transition(
        "support-0001", RunStatus.RUNNING, stage="mix", lineage={"manifest_uri": "s3://w/m.json"}
    )
    run = runs_repo.transition("support-0001", RunStatus.RUNNING, stage="train")
    assert run.status == RunStatus.RUNNING
    assert run.stage == "train"
    assert run.lineage.input_sha256 == "abc"
    assert run.lineage.output_sha256 == {"prepared.jsonl": "def"}
    assert run.lineage.manifest_uri == "s3://w/m.json"
    assert run.lineage.source_uri == "s3://raw/incoming/support.jsonl"


def test_illegal_transition_is_refused_and_leaves_the_item_unchanged(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    runs_repo.transition("support-0001", RunStatus.PREPARED)
    runs_repo.transition("support-0001", RunStatus.RUNNING)
    runs_repo.transition("support-0001", RunStatus.SUCCEEDED, metrics={"deltas": {"mmlu_points": -0.5}})
    with pytest.raises(IllegalTransition, match="SUCCEEDED -> RUNNING"):
        runs_repo.transition("support-0001", RunStatus.RUNNING, stage="train")
    assert runs_repo.get("support-0001").status == RunStatus.SUCCEEDED


def test_pending_cannot_jump_to_succeeded(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    with pytest.raises(IllegalTransition):
        runs_repo.transition("support-0001", RunStatus.SUCCEEDED)


def test_transition_of_unknown_run_raises_run_not_found(runs_repo: RunsRepository) -> None:
    with pytest.raises(RunNotFound):
        runs_repo.transition("ghost", RunStatus.PREPARED)


def test_metrics_gate_and_failure_round_trip_with_floats(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    runs_repo.transition("support-0001", RunStatus.PREPARED)
    runs_repo.transition("support-0001", RunStatus.RUNNING)
    metrics = {"baseline": {"domain_f1": 0.1234, "mmlu_accuracy": 0.5}, "deltas": {"domain_f1_points": 12.5}}
    gate = {"promote": False, "general_drop": 3.25, "reasons": ["MMLU drop 3.25 pts > budget 1.00"]}
    run = runs_repo.transition("support-0001", RunStatus.REJECTED_BY_GATE, metrics=metrics, gate=gate)
    assert run.metrics == metrics
    assert run.gate == gate
    failed = _run("support-0002")
    runs_repo.create(failed)
    run = runs_repo.transition(
        "support-0002", RunStatus.FAILED, failure=Failure(error="JobFailedError", cause="x")
    )
    assert run.failure == Failure(error="JobFailedError", cause="x")


def test_update_sets_fields_without_touching_status(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    run = runs_repo.update("support-0001", lineage={"execution_arn": "arn:exec"}, summary="ok")
    assert run.status == RunStatus.PENDING
    assert run.lineage.execution_arn == "arn:exec"
    with pytest.raises(RunNotFound):
        runs_repo.update("ghost", summary="x")


def test_unknown_lineage_keys_are_refused(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run())
    with pytest.raises(ValueError):
        runs_repo.update("support-0001", lineage={"not_a_field": "x"})


def test_list_by_dataset_uses_the_index_newest_first_and_filters_status(runs_repo: RunsRepository) -> None:
    runs_repo.create(_run("a-1", "alpha", "2026-01-01T00:00:00.000001+00:00"))
    runs_repo.create(_run("a-2", "alpha", "2026-01-02T00:00:00.000001+00:00"))
    runs_repo.create(_run("b-1", "beta", "2026-01-03T00:00:00.000001+00:00"))
    runs_repo.transition("a-1", RunStatus.REJECTED)
    assert [r.run_id for r in runs_repo.list_by_dataset("alpha")] == ["a-2", "a-1"]
    assert [r.run_id for r in runs_repo.list_by_dataset("alpha", RunStatus.REJECTED)] == ["a-1"]
    assert [r.run_id for r in runs_repo.list_by_status(RunStatus.PENDING)] == ["b-1", "a-2"]
    assert [r.run_id for r in runs_repo.list_by_dataset("alpha", limit=1)] == ["a-2"]


def test_baselines_are_cached_by_model_and_baseline_key_first_one_wins(runs_repo: RunsRepository) -> None:
    assert runs_repo.get_baseline("smollm2", "h1") is None
    first = Baseline(base_model="smollm2", key="h1", eval_uri="s3://w/1/eval.json", run_id="r1")
    runs_repo.put_baseline(first)
    later = first.model_copy(update={"eval_uri": "s3://w/2/eval.json", "run_id": "r2"})
    assert runs_repo.put_baseline(later).run_id == "r1"
    assert runs_repo.get_baseline("smollm2", "h1") == first
    assert runs_repo.get_baseline("smollm2", "h2") is None
    assert runs_repo.get_baseline("tiny", "h1") is None
    # Baseline items are not runs: the dataset and status indexes do not see them.
    assert runs_repo.list_by_status(RunStatus.PENDING) == []


def test_promoted_adapter_is_replaced_by_the_latest(runs_repo: RunsRepository) -> None:
    assert runs_repo.get_promoted("smollm2") is None
    for run_id in ("r1", "r2"):
        runs_repo.set_promoted(
            Promoted(base_model="smollm2", run_id=run_id, adapter_uri="a", train_uri="t", source_dataset="d")
        )
    promoted = runs_repo.get_promoted("smollm2")
    assert promoted is not None and promoted.run_id == "r2"
    assert runs_repo.list_by_dataset("d") == []
