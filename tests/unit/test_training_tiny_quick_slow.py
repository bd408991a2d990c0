"""Slow: the quick demo's plan teaches the tiny model its task, and the gate promotes it
(``make test-slow``; about a minute on two cores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixtune.demo.runner import QUICK
from mixtune.evaluation import GatePolicy
from mixtune.evaluation.comparison import compare
from mixtune.sample_data import support_intent_records, write_records
from mixtune.training_config import EvalConfig, TrainConfig
from mixtune_training.evaluate import evaluate
from mixtune_training.train import train


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_plan_teaches_the_tiny_model_its_intents_and_the_gate_promotes(tmp_path: Path) -> None:
    """The plan's own train, evaluation and gate settings, on its intents (domain data only: the
    demo's 75/25 mix and the sweep's arms are what `mixtune demo --quick [--sweep]` shows)."""
    config = QUICK.run_config()
    train_data = write_records(
        support_intent_records(QUICK.records, seed=0, intents=QUICK.intents), tmp_path / "train.jsonl"
    )
    eval_data = write_records(
        support_intent_records(40, seed=1, intents=QUICK.intents), tmp_path / "eval.jsonl"
    )
    train(
        TrainConfig.model_validate(
            {
                **config["train"],
                "base_model": "tiny",
                "data": str(train_data),
                "output": str(tmp_path / "run"),
            }
        )
    )
    scoring = {
        **config["evaluation"],
        "base_model": "tiny",
        "domain_data": str(eval_data),
        "general_data": None,
    }
    base = evaluate(EvalConfig.model_validate(scoring))
    tuned = evaluate(EvalConfig.model_validate({**scoring, "adapter": str(tmp_path / "run")}))

    decision = compare(base, tuned, GatePolicy.model_validate(config["gate"])).decision
    assert base.domain is not None and tuned.domain is not None
    print(f"domain macro-F1: base {base.domain.headline:.3f} -> tuned {tuned.domain.headline:.3f}")
    assert decision.verdict == "PROMOTE", decision.reasons
    assert tuned.domain.headline >= 0.5
