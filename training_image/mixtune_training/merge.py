"""``mixtune-merge``: merge a LoRA adapter into its base model's weights, for serving.

    mixtune-merge --base-model smollm2 --adapter runs/r1 --output merged/ [--dtype bfloat16]

Writes a plain transformers folder (``model.safetensors`` or safetensors shards, config,
generation config, the tokenizer of the adapter's run) that any server loading Hugging Face
checkpoints can use without PEFT, and ``merge.json`` saying what was merged. A QLoRA adapter
is merged into the base weights in ``--dtype`` (not into 4-bit weights).
"""

from __future__ import annotations

import argparse
from typing import Any

from mixtune_training.common import (
    TrainingError,
    dump_json,
    local_copy,
    output_folder,
    quiet_progress,
    run_main,
)

DTYPES = ("auto", "bfloat16", "float16", "float32")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-merge", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base-model", required=True, help="as for mixtune-train (folder, s3://, smollm2, tiny, id)"
    )
    parser.add_argument("--adapter", required=True, help="adapter folder, train output or s3:// prefix")
    parser.add_argument("--output", required=True, help="folder or s3:// prefix for the merged model")
    parser.add_argument("--dtype", choices=DTYPES, default="auto", help="default: the base model's dtype")
    parser.add_argument("--max-shard-size", default="5GB", help="safetensors shard size (default: 5GB)")
    return parser


def merge(
    base_model: str, adapter: str, output: str, dtype: str = "auto", max_shard_size: str = "5GB"
) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from mixtune_training.models import adapter_folder, load_tokenizer, resolve_base_model

    quiet_progress()
    location = resolve_base_model(base_model)
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(location), dtype=torch_dtype)
    except OSError as exc:
        raise TrainingError(f"base model not found: {base_model} ({str(exc).splitlines()[0]})") from None
    with local_copy(adapter) as folder:
        source = adapter_folder(folder)
        merged = PeftModel.from_pretrained(model, str(source)).merge_and_unload()
        has_tokenizer = (source / "tokenizer_config.json").is_file()
        tokenizer = (
            AutoTokenizer.from_pretrained(str(source)) if has_tokenizer else load_tokenizer(base_model)
        )
    summary = {
        "base_model": base_model,
        "adapter": adapter,
        "dtype": str(next(merged.parameters()).dtype).removeprefix("torch."),
        "parameters": merged.num_parameters(),
    }
    with output_folder(output) as out:
        merged.save_pretrained(out, safe_serialization=True, max_shard_size=max_shard_size)
        tokenizer.save_pretrained(out)
        (out / "merge.json").write_bytes(dump_json(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        summary = merge(args.base_model, args.adapter, args.output, args.dtype, args.max_shard_size)
        print(f"merged {args.adapter} into {args.base_model} ({summary['dtype']}) -> {args.output}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
