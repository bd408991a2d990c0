"""GPU-side choices that can be checked without a GPU: QLoRA, attention, Liger, packing, FSDP
config, and the plan printed by ``mixtune-train --dry-run``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from mixtune.training_config import TrainConfig
from mixtune_training import train
from mixtune_training.common import TrainingError


def _pretend_installed(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object):  # type: ignore[no-untyped-def]
        return object() if name in modules else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(train.importlib.util, "find_spec", find_spec)


def test_qlora_without_bitsandbytes_is_a_clear_error() -> None:
    assert importlib.util.find_spec("bitsandbytes") is None  # not installed here (CUDA only)
    with pytest.raises(TrainingError, match=r"needs bitsandbytes.*pip install bitsandbytes"):
        train.quantization_config(TrainConfig(quantization="4bit"), cuda=True)


def test_qlora_needs_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_installed(monkeypatch, "bitsandbytes")
    with pytest.raises(TrainingError, match="needs a CUDA GPU"):
        train.quantization_config(TrainConfig(quantization="4bit"), cuda=False)


def test_qlora_loads_nf4_double_quantized_with_bf16_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    _pretend_installed(monkeypatch, "bitsandbytes")
    config = train.quantization_config(TrainConfig(quantization="4bit"), cuda=True)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4" and config.bnb_4bit_use_double_quant
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert train.quantization_config(TrainConfig(), cuda=True) is None


def test_qlora_is_refused_with_fsdp() -> None:
    with pytest.raises(ValidationError, match="QLoRA"):
        TrainConfig(quantization="4bit", parallelism="fsdp")


def test_qlora_training_stops_with_the_clear_error_before_loading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mixtune.sample_data import support_intent_records, write_records

    data = write_records(support_intent_records(4, seed=0), tmp_path / "d.jsonl")
    args = [
        "--base-model",
        "tiny",
        "--data",
        str(data),
        "--output",
        str(tmp_path / "o"),
        "--quantization",
        "4bit",
    ]
    assert train.main(args) == 1
    assert "bitsandbytes" in capsys.readouterr().err


def test_attention_prefers_flash_then_kernels_then_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    assert train.attention_implementation("auto", cuda=False) == "sdpa"
    assert train.attention_implementation("eager", cuda=True) == "eager"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _pretend_installed(monkeypatch, "kernels")
    assert train.attention_implementation("auto", cuda=True) == "kernels-community/flash-attn2"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert train.attention_implementation("auto", cuda=True) == "sdpa"  # kernels would need the Hub
    _pretend_installed(monkeypatch, "flash_attn", "kernels")
    assert train.attention_implementation("auto", cuda=True) == "flash_attention_2"


def test_cpu_defaults_leave_gpu_only_features_off() -> None:
    runtime = train.runtime_for(TrainConfig())
    assert not runtime.cuda and not runtime.use_bf16 and not runtime.liger
    assert not runtime.packing and not runtime.gradient_checkpointing
    assert runtime.attn_implementation == "sdpa"
    forced = train.runtime_for(TrainConfig(packing=True, gradient_checkpointing=True))
    assert forced.packing and forced.gradient_checkpointing


def test_liger_asked_for_but_not_installed_is_a_clear_error() -> None:
    assert importlib.util.find_spec("liger_kernel") is None
    with pytest.raises(TrainingError, match="liger-kernel"):
        train.runtime_for(TrainConfig(liger_kernel=True))


def test_trainer_arguments_follow_the_plan_and_the_shipped_fsdp_config(tmp_path: Path) -> None:
    from mixtune_training.plan import DataStats, ModelShape, make_plan
    from mixtune_training.tiny import tiny_model_dir

    config = TrainConfig(
        parallelism="fsdp", global_batch_size=16, per_device_batch_size=4, report_to="tensorboard"
    )
    runtime = train.runtime_for(config)
    shape = ModelShape.from_config(json.loads((tiny_model_dir() / "config.json").read_text()))
    plan = make_plan(
        config, shape, runtime.hardware, DataStats(400, 40_000), packing=False, gradient_checkpointing=True
    )
    args = train.sft_config(config, runtime, plan, tmp_path, checkpoint_every=10)
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps) == (4, 4)
    assert args.learning_rate == pytest.approx(plan.learning_rate) == pytest.approx(1e-4)
    assert args.save_strategy == "steps" and args.save_steps == 10 and args.save_total_limit == 2
    assert args.train_sampling_strategy == "group_by_length" and args.report_to == ["tensorboard"]
    assert args.fsdp_config["state_dict_type"] == "FULL_STATE_DICT"
    assert args.fsdp_config["cpu_ram_efficient_loading"] and args.fsdp_config["activation_checkpointing"]
    assert not args.activation_checkpointing  # FSDP checkpoints activations itself
    shipped = json.loads(train.FSDP_CONFIG.read_text())
    assert shipped["version"] == 2 and shipped["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"


def test_dry_run_prints_the_plan_for_four_p5_nodes(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "--dry-run",
        "--base-model",
        "llama-3.1-8b",
        "--instance-type",
        "ml.p5.48xlarge",
        "--node-count",
        "4",
    ]
    args += ["--records", "20000", "--tokens-per-record", "120", "--max-length", "2048"]
    assert train.main(args) == 0
    out = capsys.readouterr().out
    assert "8.03 B parameters" in out and "41.94 M trainable" in out
    assert "4 x ml.p5.48xlarge = 32 GPU(s)" in out and "global 32 = 1 per device x 1 accumulation x 32" in out
    assert "37 optimizer steps" in out and "warm-up 2" in out and "tokens/step  65,536" in out
    assert "memory/GPU" in out and "(fits)" in out


def test_dry_run_on_this_machine_reads_the_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixtune.sample_data import support_intent_records, write_records

    data = write_records(support_intent_records(300, seed=0), tmp_path / "d.jsonl")
    assert train.main(["--dry-run", "--base-model", "tiny", "--data", str(data), "--max-length", "128"]) == 0
    out = capsys.readouterr().out
    assert "300 records" in out and "1 x CPU" in out
    # 300 records / 100 target steps: 3 a step, so 100 steps, and lr 1e-4 x sqrt(3 / 16)
    assert "global 3 = 3 per device x 1 accumulation x 1 process(es)" in out
    assert "100 optimizer steps" in out and "lr           4.33e-05" in out


def test_packed_rows_attend_within_each_record_with_sdpa() -> None:
    """Packing is position-aware without flash-attention: TRL's padding-free rows carry position
    ids that restart at each record and no attention mask, from which transformers builds a
    block-diagonal mask for SDPA; each record scores exactly as it does alone."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from mixtune_training.tiny import tiny_model_dir

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(), attn_implementation="sdpa").eval()
    first, second = [5, 17, 42, 99, 3], [250, 7, 8]
    collator = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)
    batch = collator([{"input_ids": first}, {"input_ids": second}])
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]] and "attention_mask" not in batch
    with torch.no_grad():  # use_cache=False, as TRL's trainer calls the model
        packed = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        alone = [model(torch.tensor([ids]), use_cache=False).logits for ids in (first, second)]
        crossed = model(input_ids=batch["input_ids"], use_cache=False).logits  # no position ids: one sequence
    assert torch.allclose(packed[:, :5], alone[0], atol=1e-5)
    assert torch.allclose(packed[:, 5:], alone[1], atol=1e-5)
    assert not torch.allclose(crossed[:, 5:], alone[1], atol=1e-5)
