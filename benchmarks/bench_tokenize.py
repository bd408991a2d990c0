"""Tokenisation cost of a training mix: how long `mixtune-train` spends turning records into ids.

    .venv/bin/python benchmarks/bench_tokenize.py --records 100000          # SmolLM2's tokenizer

Reports wall and process CPU seconds (CPU time moves less with the machine's load) for:
tokenising in memory; the first run on a data file (tokenise and write the
cache beside it); a later run or another rank (read the cache). Run against an older checkout
(``PYTHONPATH=<old>/training_image:<old>/lambdas``) it times that code's per-record
``build_dataset`` instead, which every rank ran on every start.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from mixed_records import mixed_records  # benchmarks/ (the script's folder) is on sys.path

from mixtune.sample_data import write_records


class _Clock:
    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--max-length", type=int, default=1024)
    args = parser.parse_args(argv)

    from mixtune_training.common import quiet_progress
    from mixtune_training.models import load_tokenizer

    quiet_progress()
    tokenizer = load_tokenizer(args.base_model)
    records = mixed_records(args.records)
    results: dict[str, tuple[float, float]] = {}
    from mixtune_training import chat

    if not hasattr(chat, "tokenize_records"):  # an older checkout: per-segment tokenisation in train.py
        from mixtune_training.train import build_dataset

        clock = _Clock()
        dataset, _dropped = build_dataset(records, tokenizer, args.max_length)
        results["tokenise in memory (per record, per segment)"] = clock.read()
        tokens = sum(len(ids) for ids in dataset["input_ids"])
    else:
        from mixtune_training.data import build_rows, tokenized_dataset

        clock = _Clock()
        _dataset, stats = build_rows(records, tokenizer, args.max_length)
        results["tokenise in memory (batched, whole text)"] = clock.read()
        tokens = stats.tokens
        with tempfile.TemporaryDirectory() as tmp:
            data = write_records(records, Path(tmp) / "mix.jsonl")
            clock = _Clock()
            tokenized_dataset(str(data), tokenizer, args.max_length)
            results["first run: read file, tokenise, write cache"] = clock.read()
            clock = _Clock()
            tokenized_dataset(str(data), tokenizer, args.max_length)
            results["later run / other rank: hash file, read cache"] = clock.read()
    print(f"\n{args.records:,} records, {tokens:,} tokens, {args.base_model} tokenizer\n")
    print("| step | wall s | CPU s |\n| --- | ---: | ---: |")
    for name, (wall, cpu) in results.items():
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    print(json.dumps({"records": args.records, "tokens": tokens, "seconds": results}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
