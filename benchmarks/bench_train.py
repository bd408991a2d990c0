"""Training throughput: mixtune's LoRA SFT on domain-only and mixed data vs a plain TRL call.

Every run trains in its own child process (so peak memory is its own) and reports the tokens
TRL counted (non-padding tokens) per second of training loop, plus peak memory (CUDA allocator
where a GPU is present, else the process's peak RSS). Runs:

- mixtune, domain only: short support-intent records (a one-line system prompt, ~35 tokens);
- mixtune, mixed 75/25: the same plus long general answers (~130-150 tokens, like self-rehearsal),
  with mixtune's defaults (length-grouped batches on a CPU), then without length grouping (the
  padding every mixed batch paid before) and with packing;
- plain TRL ``SFTTrainer(model=<folder>, args=SFTConfig(output_dir, max_steps))`` on the domain
  records as ``messages``: TRL's defaults (full fine-tuning, gradient checkpointing, bf16 where
  available, loss on every token, batch 8): the baseline a user would start from.

    .venv/bin/python benchmarks/bench_train.py --steps 12 --records 96   # SmolLM2-135M, CPU here
    .venv/bin/python benchmarks/bench_train.py --base-model tiny          # seconds, a smoke check

Use ``--steps`` x ``--batch-size`` = ``--records`` (one epoch): length grouping orders a whole
epoch, so a few steps of it are not a fair sample.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mixed_records import mixed_records  # benchmarks/ (the script's folder) is on sys.path

from mixtune.records import ConversationRecord
from mixtune.sample_data import support_intent_records, write_records
from mixtune.training_config import TrainConfig

SYSTEM = "Classify the customer message."
# (name, data, TrainConfig overrides or None for plain TRL)
RUNS: tuple[tuple[str, str, dict[str, Any] | None], ...] = (
    ("mixtune LoRA, domain only", "domain", {}),
    ("mixtune LoRA, mixed 75/25 (defaults: length-grouped)", "mixed", {}),
    ("mixtune LoRA, mixed 75/25, random batches", "mixed", {"group_by_length": False}),
    ("mixtune LoRA, mixed 75/25, packing", "mixed", {"packing": True}),
    ("plain TRL SFTTrainer defaults, domain only", "domain", None),
)


def write_data(path: Path, kind: str, n: int) -> list[ConversationRecord]:
    if kind == "domain":
        records = support_intent_records(n, seed=0, system=SYSTEM)
    else:
        records = mixed_records(n, domain_share=0.75, domain_system=SYSTEM)
    write_records(records, path)
    return records


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def reset_peak() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def run_mixtune(data: Path, out: Path, args: argparse.Namespace, overrides: dict[str, Any]) -> dict[str, Any]:
    from mixtune_training.train import train

    reset_peak()
    config = TrainConfig(
        base_model=args.base_model,
        data=str(data),
        output=str(out),
        max_steps=args.steps,
        per_device_batch_size=args.batch_size,
        max_length=args.max_length,
        logging_steps=1,
        **overrides,
    )
    metrics = train(config)
    return {
        "tokens": metrics["tokens"],
        "seconds": metrics["train_wall_time_s"],
        "final_loss": metrics["final_loss"],
    }


def run_plain_trl(records: list[ConversationRecord], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from mixtune_training.chat import to_messages
    from mixtune_training.models import resolve_base_model

    reset_peak()
    dataset = Dataset.from_list([{"messages": to_messages(r)} for r in records])
    # TRL's defaults, except bf16, which its validation refuses on a CPU
    sft_args = SFTConfig(
        output_dir=str(out),
        max_steps=args.steps,
        report_to="none",
        disable_tqdm=True,
        bf16=torch.cuda.is_available(),
    )
    trainer = SFTTrainer(model=str(resolve_base_model(args.base_model)), args=sft_args, train_dataset=dataset)
    started = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - started
    history = trainer.state.log_history
    tokens = max((h.get("num_tokens", 0) for h in history), default=0)
    losses = [h["loss"] for h in history if "loss" in h]
    return {"tokens": int(tokens), "seconds": seconds, "final_loss": losses[-1] if losses else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--records", type=int, default=96)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--only", type=int, choices=range(len(RUNS)), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    import torch

    from mixtune_training.common import quiet_progress

    if args.only is not None:  # child: one run per process, so its peak memory is its own
        quiet_progress()
        torch.manual_seed(0)
        _name, kind, overrides = RUNS[args.only]
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "train.jsonl"
            records = write_data(data, kind, args.records)
            if overrides is None:
                result = run_plain_trl(records, Path(tmp) / "out", args)
            else:
                result = run_mixtune(data, Path(tmp) / "out", args, overrides)
        result.update(peak_memory_mb=peak_memory_mb())
        print("RESULT " + json.dumps(result))
        return 0

    rows = []
    for index, (name, _kind, _overrides) in enumerate(RUNS):
        child_args = [a for a in (argv if argv is not None else sys.argv[1:])]
        child = [sys.executable, __file__, *child_args, "--only", str(index)]
        output = subprocess.run(child, capture_output=True, text=True, check=True).stdout
        result = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
        result.update(
            name=name, tokens_per_s=result["tokens"] / result["seconds"] if result["seconds"] else 0.0
        )
        rows.append(result)
        print(json.dumps(result), file=sys.stderr)
    threads = torch.get_num_threads()
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({threads} threads)"
    print(
        f"\n{args.base_model}, {args.steps} steps, batch {args.batch_size}, max_length {args.max_length}, {device}\n"
    )
    print("| run | tokens | seconds | tokens/s | peak memory MiB |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row['name']} | {row['tokens']} | {row['seconds']:.1f} | {row['tokens_per_s']:.0f} | "
            f"{row['peak_memory_mb']:.0f} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "device": device, "runs": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
