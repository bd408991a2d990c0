"""Evaluation throughput on the demo's eval: this tree against an earlier commit, phase by phase.

The workload is the demo's (``mixtune.demo.runner.FULL``): 40 domain support-intent examples
(classification, greedy, 8 new tokens), MMLU 4 subjects x 10 questions 0-shot, the loss of 12
held-out general records, batch 8, max_length 256. Each variant runs in its own child process
whose PYTHONPATH puts that tree's code first (``--before REF`` is exported with ``git archive``
into a temporary folder), loads the model once (with ``--adapter``, the way that tree scores an
adapter: applied before, merged now) and times each phase's own function (``score_domain``,
``score_mmlu``, the general loss) after one untimed warm-up, best of ``--repeats``. tokens/s
counts the same fixed workload on both sides: the prompt tokens of the domain questions, the
MMLU contexts and continuations, the general records.

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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SYSTEM = "Classify the customer message."
SUBJECTS = ["high_school_geography", "marketing", "nutrition", "world_religions"]
PHASES = ("domain", "mmlu", "general")
CHILD = """
import json, sys, time
from mixtune.training_config import EvalConfig
from mixtune_training import evaluate, scoring
from mixtune_training.common import load_records

settings = json.loads(sys.argv[1])
phase_args = settings.pop("phase_args")
repeats = settings.pop("repeats")
config = EvalConfig(**settings)
if hasattr(evaluate, "ModelScorer"):  # the model behind a Scorer (this tree)
    scorer = evaluate.ModelScorer.load(config)
    model_args = (scorer,)
elif hasattr(evaluate, "load_scoring_model"):
    model_args = evaluate.load_scoring_model(config)
else:
    from mixtune_training.models import load_for_inference

    model_args = load_for_inference(config.base_model, adapter=config.adapter)


def general():
    if hasattr(evaluate, "score_general"):
        return evaluate.score_general(*model_args, config)
    records = load_records(config.general_data)
    return scoring.assistant_loss(*model_args, records, config.batch_size, config.max_length)


phases = {
    "domain": lambda: evaluate.score_domain(*model_args, config.model_copy(update=phase_args["domain"])),
    "mmlu": lambda: evaluate.score_mmlu(*model_args, config),
    "general": general,
}
out = {}
for name, run in phases.items():
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    out[name] = min(times)
print("RESULT " + json.dumps(out))
"""


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


def run_variant(tree: Path, settings: dict, repeats: int) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": f"{tree / 'lambdas'}:{tree / 'training_image'}",
        "TOKENIZERS_PARALLELISM": "false",
    }
    payload = json.dumps({**settings, "repeats": repeats})
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, payload], env=env, capture_output=True, text=True, check=False
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"variant in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--adapter", help="score base + this LoRA adapter (shows the merge)")
    parser.add_argument("--before", default="fd511e2", help="git ref of the code to compare with")
    parser.add_argument("--mmlu-source", default=str(REPO.parent / "shared" / "data" / "mmlu"))
    parser.add_argument("--repeats", type=int, default=1, help="timed runs per phase; the fastest counts")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixtune-bench-eval-") as tmp:
        work = Path(tmp)
        domain, general = write_data(work)
        tokens = workload_tokens(args.base_model, domain, general, args.mmlu_source)
        common = {
            "base_model": args.base_model,
            "adapter": args.adapter,
            "domain_data": str(domain),
            "domain_task": "classification",
            "mmlu_source": args.mmlu_source,
            "mmlu_subjects": SUBJECTS,
            "mmlu_limit_per_subject": 10,
            "general_data": str(general),
            "batch_size": 8,
            "max_length": 256,
        }
        eight = {"max_new_tokens": 8}
        variants = {
            f"before ({args.before})": (export_tree(args.before, work / "before"), common, eight),
            "after": (REPO, common, eight),
            "after, default max_new_tokens": (REPO, common, {}),
            "after, batch 16": (REPO, {**common, "batch_size": 16}, eight),
        }
        results: dict[str, dict[str, float]] = {}
        for name, (tree, settings, domain_args) in variants.items():
            seconds = run_variant(tree, {**settings, "phase_args": {"domain": domain_args}}, args.repeats)
            results[name] = seconds
            print(f"{name}: " + ", ".join(f"{p} {s:.2f}s" for p, s in seconds.items()), flush=True)
    print(f"\nmodel {args.base_model}; workload tokens: {tokens}; CPU threads {os.cpu_count()}")
    print("| run | domain s | domain tok/s | MMLU s | MMLU tok/s | general s | general tok/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, seconds in results.items():
        cells = []
        for phase in PHASES:
            cells += [f"{seconds[phase]:.2f}", f"{tokens[phase] / max(seconds[phase], 1e-6):,.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(json.dumps({"tokens": tokens, "seconds": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
