"""Slow: SmolLM2-135M LoRA learns the synthetic support-intent task (``make test-slow``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixtune.evaluation import EvalResult
from mixtune.sample_data import support_intent_records, write_records
from mixtune_training import evaluate, train

SYSTEM = "Classify the customer message."  # short: every token costs on a CPU


def _write(path: Path, n: int, seed: int) -> Path:
    return write_records(support_intent_records(n, seed=seed, system=SYSTEM), path)


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_smollm2_lora_raises_domain_macro_f1_to_090(tmp_path: Path) -> None:
    train_data = _write(tmp_path / "train.jsonl", 800, seed=0)
    eval_data = _write(tmp_path / "eval.jsonl", 96, seed=1)
    scoring = ["--domain-data", str(eval_data), "--max-new-tokens", "8", "--no-mmlu", "--batch-size", "16"]
    assert evaluate.main(["--base-model", "smollm2", *scoring, "--output", str(tmp_path / "base.json")]) == 0
    code = train.main(
        [
            "--base-model",
            "smollm2",
            "--data",
            str(train_data),
            "--output",
            str(tmp_path / "run"),
            "--max-steps",
            "100",
            "--per-device-batch-size",
            "8",
            "--learning-rate",
            "1e-3",
            "--max-length",
            "256",
            "--logging-steps",
            "10",
        ]
    )
    assert code == 0
    assert (
        evaluate.main(
            [
                "--base-model",
                "smollm2",
                "--adapter",
                str(tmp_path / "run"),
                *scoring,
                "--output",
                str(tmp_path / "tuned.json"),
            ]
        )
        == 0
    )
    base = EvalResult.from_json((tmp_path / "base.json").read_bytes())
    tuned = EvalResult.from_json((tmp_path / "tuned.json").read_bytes())
    assert base.domain is not None and tuned.domain is not None
    print(f"domain macro-F1: base {base.domain.headline:.3f} -> tuned {tuned.domain.headline:.3f}")
    assert tuned.domain.headline >= 0.9
    assert tuned.domain.headline > base.domain.headline
