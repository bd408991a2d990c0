"""``mixtune-train``: LoRA SFT of a causal LM on Converse records (TRL SFTTrainer + PEFT).

One process per GPU under ``torchrun``, ``hyperpodrun`` or ``mixtune-launch`` (DDP by default;
``--parallelism fsdp`` shards the base model with the shipped ``fsdp.json``); nothing else
changes. ``--max-steps 5`` is the smoke run; ``--dry-run`` prints the plan (global batch,
steps, warm-up, learning rate, tokens per step, GPU memory) and stops.

Outputs (``--output``, a folder or ``s3://`` prefix): ``adapter/`` (PEFT safetensors and the
tokenizer), ``trainer_state.json``, ``metrics.json`` (plan, loss curve, tokens/s, wall time) and
``progress.jsonl`` (one line per logging step, written as training goes). Checkpoints go to the
checkpoint folder (see :mod:`mixtune_training.checkpoints`) and a restarted job resumes from
the newest.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from mixtune import layout, storage
from mixtune.training_config import TrainConfig
from mixtune_training.common import (
    TrainingError,
    add_config_flags,
    config_from_args,
    dump_json,
    output_folder,
    quiet_progress,
    run_main,
)
from mixtune_training.distributed import Ranks
from mixtune_training.plan import GIB, Accelerator, DataStats, Hardware, Plan, make_plan

PROGRESS_UPLOAD_EVERY_S = 15.0
FSDP_CONFIG = Path(__file__).with_name("fsdp.json")
SAVE_TOTAL_LIMIT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-train", description=__doc__.splitlines()[0])
    add_config_flags(parser, TrainConfig)
    plan = parser.add_argument_group("plan (--dry-run)")
    plan.add_argument("--dry-run", action="store_true", help="print the training plan and stop")
    plan.add_argument("--instance-type", help="plan for this instance type (e.g. ml.p5.48xlarge)")
    plan.add_argument("--node-count", type=int, default=1, help="plan for this many nodes (default: 1)")
    plan.add_argument("--gpus-per-node", type=int, help="default: the instance type's GPUs")
    plan.add_argument("--model-config", help="a config.json for the model (when --base-model is a hub id)")
    plan.add_argument("--records", type=int, help="plan for this many records instead of reading --data")
    plan.add_argument("--tokens-per-record", type=int, help="mean tokens a record, with --records")
    return parser


# --- what this machine offers ------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """Decisions that depend on the machine: precision, packing, attention, kernels, hardware."""

    cuda: bool
    ranks: Ranks
    use_bf16: bool
    packing: bool
    gradient_checkpointing: bool
    attn_implementation: str
    liger: bool
    hardware: Hardware


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def attention_implementation(requested: str, cuda: bool) -> str:
    """flash-attention where installed (varlen kernels: packed rows cost no padding), the
    ``kernels`` package's flash-attention where that is installed and the Hub is reachable,
    else PyTorch SDPA (transformers builds block-diagonal masks from packed position ids)."""
    if requested != "auto":
        return requested
    if cuda and _installed("flash_attn"):
        return "flash_attention_2"
    if cuda and _installed("kernels") and not os.environ.get("HF_HUB_OFFLINE"):
        return "kernels-community/flash-attn2"
    return "sdpa"


def runtime_for(config: TrainConfig) -> Runtime:
    import torch

    from mixtune_training.models import best_dtype

    cuda = torch.cuda.is_available()
    ranks = Ranks.from_env()
    liger = cuda and _installed("liger_kernel") if config.liger_kernel is None else config.liger_kernel
    if liger and not _installed("liger_kernel"):
        raise TrainingError("--liger-kernel needs the liger-kernel package (pip install liger-kernel)")
    if cuda:
        properties = torch.cuda.get_device_properties(0)
        accelerator = Accelerator(properties.name, properties.total_memory / GIB)
    else:
        accelerator = None
    hardware = Hardware(
        ranks.nodes, ranks.local_world_size, accelerator, os.environ.get("SM_CURRENT_INSTANCE_TYPE") or None
    )
    return Runtime(
        cuda=cuda,
        ranks=ranks,
        use_bf16=best_dtype(config.bf16) == torch.bfloat16,
        packing=cuda if config.packing is None else config.packing,
        gradient_checkpointing=cuda
        if config.gradient_checkpointing is None
        else config.gradient_checkpointing,
        attn_implementation=attention_implementation(config.attn_implementation, cuda),
        liger=bool(liger),
        hardware=hardware,
    )


# --- the trainer's configuration ---------------------------------------------------------------


def sft_config(
    config: TrainConfig, runtime: Runtime, plan: Plan, output_dir: Path, checkpoint_every: int | None
) -> Any:
    from trl import SFTConfig

    fsdp = config.parallelism == "fsdp"
    report_to = [r.strip() for r in config.report_to.split(",") if r.strip() and r.strip() != "none"]
    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        num_train_epochs=config.num_epochs,
        per_device_train_batch_size=plan.per_device_batch,
        gradient_accumulation_steps=plan.accumulation,
        learning_rate=plan.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the steps
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="steps" if checkpoint_every else "no",
        save_steps=checkpoint_every or 500,
        save_total_limit=SAVE_TOTAL_LIMIT,
        report_to=report_to or "none",
        seed=config.seed,
        data_seed=config.seed,
        bf16=runtime.use_bf16,
        # under FSDP, fsdp.json checkpoints activations (one all-gather fewer than the trainer's own)
        activation_checkpointing=runtime.gradient_checkpointing and not fsdp,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        fsdp="full_shard auto_wrap" if fsdp else None,
        fsdp_config=str(FSDP_CONFIG) if fsdp else None,
        use_liger_kernel=runtime.liger,
        dataloader_pin_memory=runtime.cuda,
        use_cpu=not runtime.cuda,  # several CPU processes then train as one gloo group
        max_length=config.max_length,
        packing=runtime.packing,
        train_sampling_strategy="group_by_length"
        if config.group_by_length and not runtime.packing
        else "random",
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def quantization_config(config: TrainConfig, cuda: bool) -> Any:
    """QLoRA's 4-bit NF4 loading (double quantization, bf16 compute); None without quantization."""
    if config.quantization != "4bit":
        return None
    if not _installed("bitsandbytes"):
        raise TrainingError(
            "--quantization 4bit (QLoRA) needs bitsandbytes, which is not installed: "
            "pip install bitsandbytes (CUDA GPUs only)"
        )
    if not cuda:
        raise TrainingError(
            "--quantization 4bit (QLoRA) needs a CUDA GPU; bitsandbytes 4-bit does not train on a CPU"
        )
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        bnb_4bit_quant_storage=torch.bfloat16,
    )


def load_for_training(config: TrainConfig, runtime: Runtime) -> Any:
    """The base model in its training dtype, straight onto this rank's GPU under DDP (no
    full copy on the CPU per rank); under FSDP rank 0 loads and the others receive shards."""
    import torch
    from transformers import AutoModelForCausalLM

    from mixtune_training.models import resolve_base_model

    kwargs: dict[str, Any] = {
        "dtype": torch.bfloat16 if runtime.use_bf16 else torch.float32,
        "attn_implementation": runtime.attn_implementation,
    }
    quantization = quantization_config(config, runtime.cuda)
    if quantization is not None:
        kwargs["quantization_config"] = quantization
    if runtime.cuda and config.parallelism == "ddp":
        kwargs["device_map"] = {"": runtime.ranks.local_rank}
    location = resolve_base_model(config.base_model)
    try:
        return AutoModelForCausalLM.from_pretrained(str(location), **kwargs)
    except OSError as exc:
        raise TrainingError(
            f"base model not found: {config.base_model} ({str(exc).splitlines()[0]})"
        ) from None
    except (ImportError, ValueError) as exc:
        if "attn" in str(exc).lower() or "attention" in str(exc).lower():
            raise TrainingError(
                f"attention implementation {runtime.attn_implementation!r} is not usable here: "
                f"{str(exc).splitlines()[0]} (try --attn-implementation sdpa)"
            ) from None
        raise


# --- outputs -----------------------------------------------------------------------------------


def _progress_callback(progress_path: Path, remote_uri: str | None) -> Any:
    from transformers import TrainerCallback

    class ProgressWriter(TrainerCallback):
        """Appends one JSON line per logging step; mirrors the file to S3 now and then."""

        def __init__(self) -> None:
            self.last_upload = 0.0
            self.started = time.monotonic()

        def on_log(self, args, state, control, logs=None, **kwargs):  # type: ignore[no-untyped-def]
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            line = {
                "step": state.global_step,
                "max_steps": state.max_steps,
                "epoch": logs.get("epoch", state.epoch),
                "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate"),
                "elapsed_s": round(time.monotonic() - self.started, 3),
            }
            with progress_path.open("ab") as handle:
                handle.write(orjson.dumps(line) + b"\n")
            if remote_uri and time.monotonic() - self.last_upload > PROGRESS_UPLOAD_EVERY_S:
                storage.copy(str(progress_path), layout.progress(remote_uri))
                self.last_upload = time.monotonic()

    return ProgressWriter()


def _model_config(config: TrainConfig) -> dict[str, Any]:
    from mixtune_training.models import resolve_base_model

    location = resolve_base_model(config.base_model)
    path = Path(str(location)) / "config.json"
    if not path.is_file():
        raise TrainingError(f"no config.json for {config.base_model}: pass --model-config FILE")
    return orjson.loads(path.read_bytes())


def training_plan(config: TrainConfig, runtime: Runtime, stats: DataStats) -> Plan:
    from mixtune_training.plan import ModelShape

    return make_plan(
        config,
        ModelShape.from_config(_model_config(config)),
        runtime.hardware,
        stats,
        packing=runtime.packing,
        gradient_checkpointing=runtime.gradient_checkpointing,
        model_name=config.base_model,
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train (resuming from the newest checkpoint, if any) and write the outputs; returns the
    metrics written to metrics.json."""
    import torch
    from trl import SFTTrainer

    from mixtune_training.checkpoints import (
        checkpoint_interval,
        checkpoint_place,
        newest_checkpoint,
        sync_callback,
    )
    from mixtune_training.data import tokenized_dataset
    from mixtune_training.models import load_tokenizer

    quiet_progress()
    if config.data is None:
        raise TrainingError("no --data given (a Converse JSONL file or s3:// URI)")
    if config.output is None:
        raise TrainingError("no --output given")
    started = time.monotonic()
    runtime = runtime_for(config)
    tokenizer = load_tokenizer(config.base_model)
    dataset, stats = tokenized_dataset(config.data, tokenizer, config.max_length, config.max_records)
    eval_dataset = None
    if config.eval_data:
        eval_dataset, _ = tokenized_dataset(config.eval_data, tokenizer, config.max_length)
    plan = training_plan(config, runtime, stats)
    if runtime.ranks.is_main:
        print(plan.render(), flush=True)
    model = load_for_training(config, runtime)
    place = checkpoint_place(config, config.output)
    every = checkpoint_interval(config, plan.steps)
    resume = newest_checkpoint(place) if every else None

    with output_folder(config.output) as out:
        remote = config.output if storage.is_s3(config.output or "") else None
        progress_path = out / layout.PROGRESS
        if resume is None:
            progress_path.unlink(missing_ok=True)
        trainer = SFTTrainer(
            model=model,
            args=sft_config(config, runtime, plan, place.local, every),
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=lora_config(config),
            callbacks=[_progress_callback(progress_path, remote), sync_callback(place)],
        )
        if resume is not None and runtime.ranks.is_main:
            print(f"resuming from {resume}", flush=True)
        train_started = time.monotonic()
        try:
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(
                f"CUDA out of memory at per-device batch size {plan.per_device_batch} "
                f"(max_length {config.max_length}); lower --per-device-batch-size (the global batch is kept "
                "by accumulation), add --gradient-checkpointing, or use --parallelism fsdp / --quantization 4bit"
            ) from None
        train_seconds = time.monotonic() - train_started
        metrics = _metrics(config, trainer, result, train_seconds, stats, started, plan, resume)
        if eval_dataset is not None:
            metrics["eval_loss"] = trainer.evaluate().get("eval_loss")
        save_adapter(trainer, out / layout.ADAPTER)  # every rank: FSDP gathers the shards
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(out / layout.ADAPTER)
            trainer.state.save_to_json(str(out / "trainer_state.json"))
            (out / layout.TRAIN_METRICS).write_bytes(dump_json(metrics))
            if place.local.is_relative_to(out) and not every:
                shutil.rmtree(place.local, ignore_errors=True)  # nothing was checkpointed there
    return metrics


def save_adapter(trainer: Any, folder: Path) -> None:
    """Save the adapter through the trainer, on every rank: under FSDP the full state dict is
    gathered from the shards (rank 0 alone would save an empty or partial adapter, or hang)."""
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(folder))


def _metrics(
    config: TrainConfig,
    trainer: Any,
    result: Any,
    train_seconds: float,
    stats: DataStats,
    started: float,
    plan: Plan,
    resume: Path | None,
) -> dict[str, Any]:
    history = trainer.state.log_history
    curve = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    if trainer.args.world_size > 1:
        # TRL's count came out doubled under a 2-process DDP run on CPU; use the data's tokens
        # times the epochs trained (non-padding tokens, like TRL's single-process count)
        tokens = round(stats.tokens * (trainer.state.epoch or 0.0))
    final_loss = curve[-1]["loss"] if curve else result.training_loss
    if not math.isfinite(final_loss):
        raise TrainingError(f"training diverged: loss {final_loss}")
    resumed_step = int(resume.name.rsplit("-", 1)[-1]) if resume else None
    return {
        "base_model": config.base_model,
        "config": config.model_dump(mode="json"),
        "config_hash": config.config_hash(),
        "plan": plan.to_json(),
        "records": stats.records + stats.dropped,
        "records_dropped_too_long": stats.dropped,
        "resumed_from_step": resumed_step,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "final_loss": final_loss,
        "loss_curve": curve,
        "tokens": int(tokens),
        "tokens_per_s": tokens / train_seconds if train_seconds else 0.0,
        "train_wall_time_s": train_seconds,
        "wall_time_s": time.monotonic() - started,
        "world_size": trainer.args.world_size,
        "device": _device_name(),
    }


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


# --- the plan without training -----------------------------------------------------------------


def dry_run(config: TrainConfig, args: argparse.Namespace) -> Plan:
    """The plan for ``args``' hardware, from the data when given (tokenised and cached as a run
    would), else from ``--records`` / ``--tokens-per-record``."""
    from mixtune_training.plan import PRESETS, ModelShape, hardware_for

    if args.model_config:
        model_config = orjson.loads(Path(args.model_config).read_bytes())
    elif config.base_model in PRESETS:
        model_config = PRESETS[config.base_model]
    elif storage.is_s3(config.base_model):
        model_config = orjson.loads(storage.read_bytes(storage.join(config.base_model, "config.json")))
    else:
        model_config = _model_config(config)
    if args.instance_type:
        hardware = hardware_for(args.instance_type, args.node_count, args.gpus_per_node)
        cuda = True
    else:
        runtime = runtime_for(config)
        hardware, cuda = runtime.hardware, runtime.cuda
    stats = None
    if args.records:
        stats = DataStats(
            records=args.records, tokens=args.records * (args.tokens_per_record or config.max_length)
        )
    elif config.data:
        from mixtune_training.data import tokenized_dataset
        from mixtune_training.models import load_tokenizer

        quiet_progress()
        _, stats = tokenized_dataset(
            config.data, load_tokenizer(config.base_model), config.max_length, config.max_records
        )
    return make_plan(
        config,
        ModelShape.from_config(model_config),
        hardware,
        stats,
        packing=cuda if config.packing is None else config.packing,
        gradient_checkpointing=cuda
        if config.gradient_checkpointing is None
        else config.gradient_checkpointing,
        model_name=config.base_model,
    )


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        config = config_from_args(TrainConfig, args)
        if args.dry_run:
            from mixtune_training.plan import PlanError

            try:
                print(dry_run(config, args).render())
            except PlanError as error:
                raise TrainingError(str(error)) from None
            return 0
        metrics = train(config)
        if not Ranks.from_env().is_main:
            return 0
        print(
            f"trained {metrics['steps']} steps: final loss {metrics['final_loss']:.4f}, "
            f"{metrics['tokens_per_s']:.0f} tokens/s, {metrics['wall_time_s']:.1f} s -> {config.output}"
        )
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
