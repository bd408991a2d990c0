"""Evaluation throughput on the demo's eval: this tree against an earlier commit, phase by phase.

The workload is the demo's (``mixtune.demo.runner.FULL``): 40 domain support-intent examples
(classification, greedy, 8 new tokens), MMLU 4 subjects x 10 questions 0-shot, the loss of 12
held-out general records, batch 8, max_length 256. Each phase runs alone in a fresh
``python -m mixtune_training.evaluate`` (one child per run, so the code measured is exactly the
code of that tree: ``--before REF`` is exported with ``git archive`` into a temporary folder and
put first on PYTHONPATH). A run that loads the model and scores nothing is subtracted, so a
phase's seconds are its own. tokens/s counts the same fixed workload on both sides: the prompt
tokens of the domain questions, the MMLU contexts and continuations, the general records.

    .venv/bin/python benchmarks/bench_eval.py --base-model smollm2 --before fd511e2
    .venv/bin/python benchmarks/bench_eval.py --base-model tiny --before fd511e2       # a smoke check

Variants of this tree: ``after`` (the demo's flags), ``after, default max_new_tokens`` (the
longest label's tokens plus the end of turn, instead of 8), ``after, batch 16``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "Classify the customer message."
SUBJECTS = ["high_school_geography", "marketing", "nutrition", "world_religions"]
PHASES = ("load", "domain", "mmlu", "general")


def export_tree(ref: str, folder: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def write_data(folder: Path) -> tuple[Path, Path]:
    from mixtune.mixing import load_prompt_bank
    from mixtune.records import ConversationRecord
    from mixtune.sample_data import support_intent_records, write_records

    domain = write_records(support_intent_records(40, seed=1, system=SYSTEM), folder / "eval.jsonl")
    bank = [p.prompt for p in load_prompt_bank()]
    general = [
        ConversationRecord.from_turns([("user", bank[i]), ("assistant", " ".join(bank[i + 1 : i + 4]))])
        for i in range(0, 48, 4)
    ]
    return domain, write_records(general, folder / "general.jsonl")


def workload_tokens(base_model: str, domain: Path, general: Path, mmlu_source: str) -> dict[str, int]:
    """Prompt tokens each phase must process, measured once with the model's tokenizer."""
    from mixtune.evaluation.mmlu import CONTINUATIONS, build_prompt, load_mmlu
    from mixtune_training.chat import render_prompt, tokenize_for_training
    from mixtune_training.common import load_records
    from mixtune_training.models import load_tokenizer

    tokenizer = load_tokenizer(base_model)
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    domain_tokens = sum(count(render_prompt(tokenizer, r)) for r in load_records(str(domain)))
    questions = load_mmlu(mmlu_source, "test", SUBJECTS, 10)
    mmlu_tokens = sum(count(build_prompt(q) + c) for q in questions for c in CONTINUATIONS)
    rows = [tokenize_for_training(tokenizer, r, 256) for r in load_records(str(general))]
    general_tokens = sum(len(r["input_ids"]) for r in rows if r is not None)
    return {"domain": domain_tokens, "mmlu": mmlu_tokens, "general": general_tokens}


def phase_flags(phase: str, domain: Path, general: Path, mmlu_source: str) -> list[str]:
    flags = ["--no-mmlu"]
    if phase == "domain":
        flags = ["--no-mmlu", "--domain-data", str(domain), "--domain-task", "classification"]
    elif phase == "mmlu":
        flags = [
            "--mmlu-source",
            mmlu_source,
            "--mmlu-subjects",
            ",".join(SUBJECTS),
            "--mmlu-limit-per-subject",
            "10",
        ]
    elif phase == "general":
        flags = ["--no-mmlu", "--general-data", str(general)]
    return flags


def run_phase(tree: Path, base_model: str, flags: list[str], out: Path) -> float:
    env = {
        **os.environ,
        "PYTHONPATH": f"{tree / 'lambdas'}:{tree / 'training_image'}",
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [sys.executable, "-m", "mixtune_training.evaluate", "--base-model", base_model, *flags]
    cmd += ["--max-length", "256", "--output", str(out)]
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--before", default="fd511e2", help="git ref of the code to compare with")
    parser.add_argument("--mmlu-source", default=str(REPO.parent / "shared" / "data" / "mmlu"))
    parser.add_argument("--repeats", type=int, default=1, help="runs per phase; the fastest counts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixtune-bench-eval-") as tmp:
        work = Path(tmp)
        domain, general = write_data(work)
        tokens = workload_tokens(args.base_model, domain, general, args.mmlu_source)
        variants = {
            f"before ({args.before})": (export_tree(args.before, work / "before"), ["--max-new-tokens", "8"]),
            "after": (REPO, ["--max-new-tokens", "8"]),
            "after, default max_new_tokens": (REPO, []),
            "after, batch 16": (REPO, ["--max-new-tokens", "8", "--batch-size", "16"]),
        }
        results: dict[str, dict[str, float]] = {}
        for name, (tree, extra) in variants.items():
            seconds: dict[str, float] = {}
            for phase in PHASES:
                flags = phase_flags(phase, domain, general, args.mmlu_source)
                if phase == "domain":
                    flags += extra
                elif "--batch-size" in extra:
                    flags += ["--batch-size", "16"]
                runs = [run_phase(tree, args.base_model, flags, work / "out") for _ in range(args.repeats)]
                seconds[phase] = min(runs)
            results[name] = seconds
            print(f"{name}: " + ", ".join(f"{p} {s:.1f}s" for p, s in seconds.items()), flush=True)
    print(f"\nmodel {args.base_model}; workload tokens: {tokens}; CPU threads {os.cpu_count()}")
    print("| run | domain s | domain tok/s | MMLU s | MMLU tok/s | general s | general tok/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds in results.items():
        cells = []
        for phase in ("domain", "mmlu", "general"):
            own = max(seconds[phase] - seconds["load"], 1e-3)
            cells += [f"{own:.1f}", f"{tokens[phase] / own:,.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps({"tokens": tokens, "seconds": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
