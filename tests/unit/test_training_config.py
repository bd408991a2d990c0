from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mixtune.training_config import EvalConfig, TrainConfig


def test_train_config_defaults_match_the_documented_lora_setup() -> None:
    config = TrainConfig()
    assert (config.lora_r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.05)
    assert config.target_modules == "all-linear"
    # the learning rate follows the global batch unless set: 1e-4 at 16 sequences, square-root scaled
    assert config.learning_rate is None and config.base_learning_rate == 1e-4
    assert (config.global_batch_size, config.gradient_accumulation_steps, config.target_steps) == (
        None,
        None,
        100,
    )


def test_train_config_from_yaml_with_overrides(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("base_model: tiny\nmax_steps: 100\nlora_r: 8\n")
    config = TrainConfig.from_file(path, max_steps=5, output=None)
    assert (config.base_model, config.max_steps, config.lora_r) == ("tiny", 5, 8)
    assert config.is_smoke


def test_train_config_rejects_unknown_fields_and_zero_steps() -> None:
    with pytest.raises(ValidationError):
        TrainConfig.model_validate({"lora_rank": 4})
    with pytest.raises(ValidationError):
        TrainConfig(max_steps=0)


def test_eval_config_hash_ignores_which_model_is_scored() -> None:
    base = EvalConfig(base_model="smollm2", mmlu_subjects=["anatomy"])
    tuned = base.model_copy(update={"adapter": "s3://b/adapter", "output": "/tmp/x"})
    assert base.config_hash() == tuned.config_hash()
    assert base.config_hash() != base.model_copy(update={"mmlu_shots": 5}).config_hash()


def test_configs_never_import_torch() -> None:
    assert "mixtune.training_config" in sys.modules
    # a fresh interpreter proves it regardless of what other tests imported
    import subprocess

    code = "import sys, mixtune.training_config, mixtune.evaluation; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_to_args_round_trips_non_default_fields() -> None:
    config = TrainConfig(base_model="tiny", max_steps=5, packing=True, target_modules=["q_proj", "v_proj"])
    assert config.to_args() == [
        "--base-model",
        "tiny",
        "--target-modules",
        "q_proj,v_proj",
        "--max-steps",
        "5",
        "--packing",
    ]
