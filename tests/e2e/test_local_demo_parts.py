"""The demo's pieces that need no cloud: its run configs, the follower's parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtune.demo.follow import parse_progress
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


def test_progress_lines_parse_and_a_partial_line_is_skipped() -> None:
    text = '{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.0}\n{"step": 3, "lo'
    assert parse_progress(text) == [(1, 2.5), (2, 2.0)]


def test_rehearsal_split_holds_out_records_and_keeps_all(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))

    train, held = split_rehearsal(path, holdout=3)

    assert len(held.splitlines()) == 3 and len(train.splitlines()) == 7
    assert sorted(train.splitlines() + held.splitlines()) == sorted(path.read_bytes().splitlines())
