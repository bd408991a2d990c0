"""The demo's pieces that need no cloud: its run configs, the follower's parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixtune.dataprep import PrepareOptions, prepare_dataset
from mixtune.demo.data import rehearsal_key, write_domain_dataset
from mixtune.demo.follow import parse_progress
from mixtune.demo.runner import FULL, QUICK, DemoPlan, split_rehearsal
from mixtune.evaluation import GatePolicy
from mixtune.mixing import MixSpec
from mixtune.runs import RunConfig
from mixtune.sample_data import INTENTS


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_demo_run_configs_are_valid_run_configs(plan: DemoPlan) -> None:
    config = RunConfig.model_validate(plan.run_config(general_uri="s3://mixtune-work/general/heldout.jsonl"))

    assert config.train.max_steps == plan.train_steps
    assert MixSpec.model_validate(config.mix).domain_percent == 75
    GatePolicy.model_validate(config.gate)
    assert config.evaluation.mmlu_subjects == plan.mmlu_subjects


@pytest.mark.parametrize("plan", [FULL, QUICK], ids=["full", "quick"])
def test_demo_datasets_pass_prepare_with_the_plans_options(plan: DemoPlan, tmp_path: Path) -> None:
    """The generated data repeats templates (more so with fewer intents): the duplicates that
    prepare drops must stay under its reject limit, or the demo ends REJECTED."""
    dataset = write_domain_dataset(tmp_path / "d.jsonl", plan.records, 0, plan.collision_share, plan.intents)
    options = PrepareOptions.model_validate(plan.run_config()["prepare"])

    report = prepare_dataset(str(dataset), str(tmp_path / "out"), options)

    assert report.accepted, report.reasons
    assert report.labels == sorted(plan.intents or INTENTS)


def test_quick_plan_scores_the_whole_label_by_the_evaluations_default() -> None:
    """No max_new_tokens: the evaluation sizes it from the longest label in the model's tokens."""
    evaluation = QUICK.run_config()["evaluation"]
    assert "max_new_tokens" not in evaluation
    assert RunConfig.model_validate(QUICK.run_config()).evaluation.max_new_tokens is None


def test_tiny_rehearsal_cache_is_keyed_by_the_tiny_models_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import mixtune_training.tiny

    first = rehearsal_key("tiny", 16, 8)
    monkeypatch.setattr(mixtune_training.tiny, "TINY_VERSION", "v-other")
    assert rehearsal_key("tiny", 16, 8) != first
    assert rehearsal_key("smollm2", 16, 8) == rehearsal_key("smollm2", 16, 8)


def test_progress_lines_parse_and_a_partial_line_is_skipped() -> None:
    text = '{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 2.0}\n{"step": 3, "lo'
    assert parse_progress(text) == [(1, 2.5), (2, 2.0)]


def test_rehearsal_split_holds_out_records_and_keeps_all(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10)))

    train, held = split_rehearsal(path, holdout=3)

    assert len(held.splitlines()) == 3 and len(train.splitlines()) == 7
    assert sorted(train.splitlines() + held.splitlines()) == sorted(path.read_bytes().splitlines())


def _mix_sweep_arm(tmp_path: Path, plan: DemoPlan, records: int, general: int) -> None:
    """Prepare ``records`` demo rows and mix them at the plan's most general arm with
    ``general`` rehearsal answers less the held-out ones (raises past the oversampling limit)."""
    from mixtune.dataprep import PrepareOptions, prepare_dataset
    from mixtune.demo.data import catalog_text, write_domain_dataset
    from mixtune.mixing import Catalog, mix_datasets
    from mixtune.records import ConversationRecord
    from mixtune.sample_data import write_records

    folder = tmp_path / str(records)
    (folder / "general").mkdir(parents=True)
    answers = [
        ConversationRecord.from_turns(
            [("user", f"General question number {i}?"), ("assistant", f"Answer {i}.")]
        )
        for i in range(general - plan.general_holdout)
    ]
    write_records(answers, folder / "general" / "self-rehearsal.jsonl")
    (folder / "general" / "catalog.json").write_text(catalog_text("self-rehearsal.jsonl"))
    dataset = write_domain_dataset(folder / "domain.jsonl", records, 0, plan.collision_share)
    prepare_dataset(str(dataset), str(folder / "prepared"), PrepareOptions(**plan.run_config()["prepare"]))
    spec = MixSpec(
        domain_percent=min(plan.sweep or [plan.domain_percent]), categories={"self_rehearsal": 100}
    )
    catalog = Catalog.load(str(folder / "general" / "catalog.json"))
    mix_datasets(str(folder / "prepared" / "prepared.jsonl"), catalog, spec, str(folder / "mix"))


def test_the_sweep_demo_uses_as_many_domain_rows_as_its_kept_rehearsal_answers_balance(
    tmp_path: Path,
) -> None:
    from mixtune.demo.sweep import sweep_plan
    from mixtune.mixing.sources import MixError

    plan = sweep_plan(FULL, [100, 75, 50])
    kept = 54  # SmolLM2's answers that ended on their own, of the demo's 120 prompts
    records = plan.records_balanced_by(kept)
    assert records < plan.records and FULL.records_balanced_by(kept) == FULL.records  # 75/25 alone fits

    _mix_sweep_arm(tmp_path, plan, records, kept)  # the 50/50 arm mixes
    with pytest.raises(MixError, match="over max_oversample"):
        _mix_sweep_arm(tmp_path, plan, plan.records, kept)  # all 320 rows would not
