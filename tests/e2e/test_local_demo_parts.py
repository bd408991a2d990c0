"""The demo's pieces that need no cloud: its run configs, the follower's parsing, the report."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mixtune.demo.follow import parse_progress, phases_from_history
from mixtune.demo.report import DemoSummary, ScoreRow, write_report
from mixtune.demo.runner import FULL, QUICK, DemoPlan, split_rehearsal
from mixtune.evaluation import GatePolicy
from mixtune.mixing import MixSpec
from mixtune.runs import RunConfig


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_demo_run_configs_are_valid_run_configs(plan: DemoPlan) -> None:
    config = RunConfig.model_validate(plan.run_config(general_uri="s3://mixtune-work/general/heldout.jsonl"))

    assert config.train.max_steps == plan.train_steps
    assert MixSpec.model_validate(config.mix).domain_percent == 75
    GatePolicy.model_validate(config.gate)
    assert config.evaluation.mmlu_subjects == plan.mmlu_subjects


def test_phases_group_launch_wait_poll_states_and_skip_choices() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(kind: str, name: str, second: int) -> dict[str, object]:
        key = "stateEnteredEventDetails" if kind.endswith("Entered") else "stateExitedEventDetails"
        return {"type": kind, "timestamp": t0 + timedelta(seconds=second), key: {"name": name}}

    history = [
        event("TaskStateEntered", "Mix", 0),
        event("TaskStateExited", "Mix", 2),
        event("TaskStateEntered", "TrainLaunch", 2),
        event("TaskStateExited", "TrainLaunch", 3),
        event("WaitStateEntered", "TrainWait", 3),
        event("WaitStateExited", "TrainWait", 4),
        event("TaskStateEntered", "TrainPoll", 4),
        event("TaskStateExited", "TrainPoll", 9),
        event("ChoiceStateEntered", "TrainDone", 9),
        event("ChoiceStateExited", "TrainDone", 9),
        event("TaskStateEntered", "Record", 9),
    ]

    phases = phases_from_history(history)

    assert [p.name for p in phases] == ["Mix", "Train", "Record"]
    assert [p.seconds(t0 + timedelta(seconds=10)) for p in phases] == [2.0, 7.0, 1.0]
    assert phases[-1].ended is None


def test_progress_lines_parse_and_a_partial_line_is_skipped() -> None:
    text = '{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.0}\n{"step": 3, "lo'
    assert parse_progress(text) == [(1, 2.5), (2, 2.0)]


def test_rehearsal_split_holds_out_records_and_keeps_all(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))

    train, held = split_rehearsal(path, holdout=3)

    assert len(held.splitlines()) == 3 and len(train.splitlines()) == 7
    assert sorted(train.splitlines() + held.splitlines()) == sorted(path.read_bytes().splitlines())


def test_report_has_table_plots_and_summary(tmp_path: Path) -> None:
    summary = DemoSummary(
        title="demo",
        run_id="r-1",
        status="SUCCEEDED",
        base_model="smollm2",
        mix="75% domain / 25% self-rehearsal",
        wall_time_s=300.0,
        scores=[ScoreRow(name="domain macro-F1", base=0.1, tuned=0.8)],
        gate={"promote": True, "reasons": ["domain gain +70.00 pts >= required 1.00"]},
        loss=[(1, 2.0), (2, 1.5)],
        prepare_counts={"input": 10, "sanitized": 1},
    )

    md = write_report(summary, tmp_path)

    text = md.read_text()
    assert "| domain macro-F1 | 0.100 | 0.800 | +0.700 (better) |" in text
    assert "PROMOTE: domain gain" in text
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "scores.png").stat().st_size > 0
    assert DemoSummary.model_validate_json((tmp_path / "summary.json").read_text()) == summary
