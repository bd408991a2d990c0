"""The training plan's arithmetic: model size, LoRA size, global batch, steps, warm-up, lr, memory."""

from __future__ import annotations

import math

import pytest

from mixtune.training_config import TrainConfig
from mixtune_training.plan import (
    GIB,
    PRESETS,
    DataStats,
    ModelShape,
    PlanError,
    choose_batch,
    hardware_for,
    make_plan,
)

LLAMA_8B = ModelShape.from_config(PRESETS["llama-3.1-8b"])
P5_X4 = hardware_for("ml.p5.48xlarge", nodes=4)


def test_llama_8b_sizes_match_the_published_counts() -> None:
    # Llama-3.1-8B: 8,030,261,248 parameters; PEFT reports 41,943,040 trainable for r=16 on all linears
    assert LLAMA_8B.parameters == 8_030_261_248
    assert LLAMA_8B.lora_parameters(16, "all-linear") == 41_943_040
    assert LLAMA_8B.lora_parameters(16, ["q_proj", "v_proj"]) == 32 * 16 * (4096 + 4096 + 4096 + 1024)


def test_model_and_lora_sizes_match_the_tiny_model_under_peft() -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from mixtune_training.tiny import tiny_model_dir

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir())
    shape = ModelShape.from_config(model.config.to_dict())
    assert shape.parameters == model.num_parameters()
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM"))
    trainable, _total = peft_model.get_nb_trainable_parameters()
    assert shape.lora_parameters(4, "all-linear") == trainable


def test_plan_for_an_8b_lora_on_four_p5_nodes() -> None:
    config = TrainConfig(max_length=2048)
    data = DataStats(records=20_000, tokens=2_400_000)
    plan = make_plan(config, LLAMA_8B, P5_X4, data, packing=True, gradient_checkpointing=True)
    assert plan.world_size == 32
    assert plan.units == math.ceil(2_400_000 / 2048) == 1172  # packed rows
    # 1172 rows / 100 target steps = 12 a step, raised to one row per GPU
    assert (plan.per_device_batch, plan.accumulation, plan.global_batch) == (1, 1, 32)
    assert plan.steps == plan.steps_per_epoch == math.ceil(1172 / 32) == 37
    assert plan.warmup_steps == math.ceil(37 * 0.03) == 2
    assert plan.learning_rate == pytest.approx(1e-4 * math.sqrt(32 / 16))
    assert plan.tokens_per_step == 32 * 2048
    memory = plan.memory
    assert memory.weights == pytest.approx(8_030_261_248 * 2 / GIB)
    assert memory.trainable == pytest.approx(41_943_040 * 16 / GIB)
    # checkpointed block inputs (32 x 4096 x 2 bytes a token) + one block's saved tensors
    # ((14 x 4096 + 2 x 1024 + 5 x 14336) x 2 bytes a token) + final norm, for 2048 tokens
    per_token = 32 * 4096 * 2 + (14 * 4096 + 2 * 1024 + 5 * 14336) * 2 + 4096 * 4
    assert memory.activations == pytest.approx(2048 * per_token / GIB)
    assert memory.total == pytest.approx(memory.weights + memory.trainable + memory.activations + 3.0)
    assert memory.capacity == pytest.approx(79.6) and memory.fits
    text = plan.render()
    assert "4 x ml.p5.48xlarge = 32 GPU(s)" in text and "global 32 = 1 per device" in text


def test_a_small_domain_set_keeps_enough_steps_where_the_old_defaults_gave_eight() -> None:
    data = DataStats(records=2_000, tokens=240_000)
    plan = make_plan(TrainConfig(), LLAMA_8B, P5_X4, data, packing=False, gradient_checkpointing=True)
    assert plan.global_batch == 32 and plan.steps == math.ceil(2000 / 32) == 63
    old = make_plan(
        TrainConfig(gradient_accumulation_steps=1),
        LLAMA_8B,
        P5_X4,
        data,
        packing=False,
        gradient_checkpointing=True,
    )
    assert old.global_batch == 256 and old.steps == 8 and old.warmup_steps == 1


def test_large_sets_are_capped_at_the_auto_global_batch_and_use_accumulation() -> None:
    config = TrainConfig(per_device_batch_size=4)
    data = DataStats(records=100_000, tokens=12_000_000)
    one_node = make_plan(
        config, LLAMA_8B, hardware_for("p5.48xlarge"), data, packing=False, gradient_checkpointing=True
    )
    assert (one_node.per_device_batch, one_node.accumulation, one_node.global_batch) == (4, 4, 128)
    assert one_node.steps == math.ceil(math.ceil(100_000 / 32) / 4)


def test_an_explicit_global_batch_is_split_into_per_device_and_accumulation() -> None:
    config = TrainConfig(global_batch_size=128, per_device_batch_size=8)
    assert choose_batch(config, 32, None).per_device == 4 and choose_batch(config, 32, None).accumulation == 1
    batch = choose_batch(config, 8, None)
    assert (batch.per_device, batch.accumulation, batch.global_size) == (8, 2, 128)
    assert choose_batch(TrainConfig(max_steps=5), 8, 10_000).global_size == 64  # smoke: one batch a GPU


def test_memory_that_cannot_fit_is_reported() -> None:
    config = TrainConfig(per_device_batch_size=16, max_length=8192, max_steps=10)
    plan = make_plan(config, LLAMA_8B, P5_X4, None, packing=True, gradient_checkpointing=False)
    assert plan.memory.fits is False
    assert any("exceeds the GPU" in warning for warning in plan.warnings)


def test_fsdp_shards_and_qlora_shrinks_the_weights() -> None:
    seventy = ModelShape.from_config(PRESETS["llama-3.1-70b"])
    assert seventy.parameters == pytest.approx(70.55e9, rel=1e-3)
    ddp = make_plan(
        TrainConfig(max_steps=10), seventy, P5_X4, None, packing=True, gradient_checkpointing=True
    )
    fsdp = make_plan(
        TrainConfig(max_steps=10, parallelism="fsdp"),
        seventy,
        P5_X4,
        None,
        packing=True,
        gradient_checkpointing=True,
    )
    assert ddp.memory.fits is False and fsdp.memory.fits is True
    qlora = make_plan(
        TrainConfig(max_steps=10, quantization="4bit"),
        LLAMA_8B,
        hardware_for("g5.xlarge"),
        None,
        packing=True,
        gradient_checkpointing=True,
    )
    assert qlora.memory.weights < 0.4 * LLAMA_8B.parameters * 2 / GIB


def test_unknown_instance_type_is_a_clear_error() -> None:
    with pytest.raises(PlanError, match="unknown instance type"):
        hardware_for("ml.x9.huge")
