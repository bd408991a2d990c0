"""``mixtune-train``: LoRA SFT of a causal LM on Converse records (TRL SFTTrainer + PEFT).

Run under ``torchrun`` or ``accelerate launch`` for several GPUs or nodes (DDP, or FSDP through
an accelerate config): nothing here changes. ``--max-steps 5`` is the smoke run.

Outputs (``--output``, a folder or ``s3://`` prefix): ``adapter/`` (PEFT safetensors and the
tokenizer), ``trainer_state.json``, ``metrics.json`` (loss curve, tokens/s, wall time) and
``progress.jsonl`` (one line per logging step, written as training goes).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson

from mixtune import storage
from mixtune.training_config import TrainConfig
from mixtune_training.common import (
    TrainingError,
    add_config_flags,
    config_from_args,
    dump_json,
    load_records,
    output_folder,
    quiet_progress,
    run_main,
)

PROGRESS_UPLOAD_EVERY_S = 15.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-train", description=__doc__.splitlines()[0])
    add_config_flags(parser, TrainConfig)
    return parser


def build_dataset(records: list[Any], tokenizer: Any, max_length: int) -> tuple[Any, int]:
    """(tokenized dataset with input_ids/labels, number of records dropped for length)."""
    from datasets import Dataset

    from mixtune_training.chat import tokenize_for_training

    rows = [tokenize_for_training(tokenizer, record, max_length) for record in records]
    kept = [row for row in rows if row is not None]
    if not kept:
        raise TrainingError(f"no record keeps an assistant token within max_length={max_length}")
    return Dataset.from_list(kept), len(rows) - len(kept)


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
                storage.copy(str(progress_path), storage.join(remote_uri, "progress.jsonl"))
                self.last_upload = time.monotonic()

    return ProgressWriter()


def sft_config(config: TrainConfig, output_dir: Path, use_bf16: bool) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir),
        max_steps=config.max_steps,
        num_train_epochs=config.num_epochs,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        learning_rate=config.learning_rate,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_ratio,  # transformers 5: a value below 1 is a ratio of the steps
        weight_decay=config.weight_decay,
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to="none",
        seed=config.seed,
        data_seed=config.seed,
        bf16=use_bf16,
        activation_checkpointing=config.gradient_checkpointing,
        dataloader_pin_memory=_has_cuda(),
        max_length=config.max_length,
        packing=config.packing,
        disable_tqdm=True,
        dataloader_num_workers=0,
        ddp_find_unused_parameters=False,
    )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )


def train(config: TrainConfig) -> dict[str, Any]:
    """Train and write the outputs; returns the metrics written to metrics.json."""
    import torch
    from trl import SFTTrainer

    from mixtune_training.models import best_dtype, load_model

    quiet_progress()
    if config.data is None:
        raise TrainingError("no --data given (a Converse JSONL file or s3:// URI)")
    started = time.monotonic()
    records = load_records(config.data, limit=config.max_records)
    use_bf16 = best_dtype(config.bf16) == torch.bfloat16
    model, tokenizer = load_model(config.base_model, config.bf16)
    dataset, dropped = build_dataset(records, tokenizer, config.max_length)
    eval_dataset = None
    if config.eval_data:
        eval_dataset, _ = build_dataset(load_records(config.eval_data), tokenizer, config.max_length)

    with output_folder(config.output) as out:
        remote = config.output if storage.is_s3(config.output or "") else None
        progress_path = out / "progress.jsonl"
        progress_path.unlink(missing_ok=True)
        trainer = SFTTrainer(
            model=model,
            args=sft_config(config, out / "trainer", use_bf16),
            train_dataset=dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            peft_config=lora_config(config),
            callbacks=[_progress_callback(progress_path, remote)],
        )
        train_started = time.monotonic()
        try:
            result = trainer.train()
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(
                f"CUDA out of memory at per-device batch size {config.per_device_batch_size} "
                f"(max_length {config.max_length}); lower --per-device-batch-size, raise "
                "--gradient-accumulation-steps or add --gradient-checkpointing"
            ) from None
        train_seconds = time.monotonic() - train_started
        metrics = _metrics(config, trainer, result, train_seconds, len(records), dropped, started)
        if eval_dataset is not None:
            metrics["eval_loss"] = trainer.evaluate().get("eval_loss")
        if trainer.is_world_process_zero():
            trainer.model.save_pretrained(out / "adapter")
            tokenizer.save_pretrained(out / "adapter")
            trainer.state.save_to_json(str(out / "trainer_state.json"))
            (out / "metrics.json").write_bytes(dump_json(metrics))
            shutil.rmtree(out / "trainer", ignore_errors=True)  # empty: checkpoints are off
    return metrics


def _metrics(
    config: TrainConfig,
    trainer: Any,
    result: Any,
    train_seconds: float,
    n_records: int,
    dropped: int,
    started: float,
) -> dict[str, Any]:
    history = trainer.state.log_history
    curve = [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h]
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    final_loss = curve[-1]["loss"] if curve else result.training_loss
    if not math.isfinite(final_loss):
        raise TrainingError(f"training diverged: loss {final_loss}")
    return {
        "base_model": config.base_model,
        "config": config.model_dump(mode="json"),
        "config_hash": config.config_hash(),
        "records": n_records,
        "records_dropped_too_long": dropped,
        "steps": trainer.state.global_step,
        "train_loss": result.training_loss,
        "final_loss": final_loss,
        "loss_curve": curve,
        "tokens": int(tokens),
        "tokens_per_s": tokens / train_seconds if train_seconds else 0.0,
        "train_wall_time_s": train_seconds,
        "wall_time_s": time.monotonic() - started,
        "world_size": int(os.environ.get("WORLD_SIZE", "1")),
        "device": _device_name(),
    }


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        config = config_from_args(TrainConfig, build_parser().parse_args(argv))
        metrics = train(config)
        print(
            f"trained {metrics['steps']} steps: final loss {metrics['final_loss']:.4f}, "
            f"{metrics['tokens_per_s']:.0f} tokens/s, {metrics['wall_time_s']:.1f} s -> {config.output}"
        )
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
