"""The forgetting experiment: base vs domain-only vs mixed (domain + self-rehearsal) LoRA SFT.

1. The base model answers prompt-bank prompts (self-rehearsal data); a seeded split keeps
   some prompts out of every training set, for a general loss on prompts the mix never saw.
2. Two LoRA runs with the same steps and settings: domain only, and a mix (default 60 % domain,
   40 % self-rehearsal) built by ``mixtune.mixing.mix_datasets``.
3. Base, domain-only and mixed are scored under one eval config: domain macro-F1 on held-out
   synthetic support intents, assistant-token loss on the held-out rehearsal set, an MMLU subset.

    .venv/bin/python scripts/forgetting_experiment.py --out /tmp/forgetting     # SmolLM2, CPU: ~30 min
    .venv/bin/python scripts/forgetting_experiment.py --base-model tiny --out /tmp/f-tiny --quick

It prints a markdown table and writes ``results.json`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from mixtune.evaluation import EvalResult
from mixtune.mixing import Catalog, MixSpec, load_prompt_bank, mix_datasets
from mixtune.records import ConversationRecord
from mixtune.sample_data import INTENTS, support_intent_records, write_records
from mixtune.training_config import EvalConfig, TrainConfig

SYSTEM = f"Classify the customer message. Answer with one label only: {', '.join(INTENTS)}."
MMLU_SUBJECTS = ["high_school_geography", "marketing", "nutrition", "us_foreign_policy"]


def write_domain(path: Path, n: int, seed: int) -> Path:
    return write_records(support_intent_records(n, seed=seed, system=SYSTEM), path)


def make_rehearsal(out: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """(train rehearsal file, held-out rehearsal file): base-model answers to disjoint prompts."""
    from mixtune_training import generate_rehearsal

    train_path, heldout_path = out / "rehearsal_train.jsonl", out / "rehearsal_heldout.jsonl"
    if train_path.is_file() and heldout_path.is_file():
        return train_path, heldout_path
    bank = load_prompt_bank()
    random.Random(args.seed).shuffle(bank)
    wanted = bank[: args.rehearsal_train + args.rehearsal_heldout]
    prompts = out / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"id": p.id, "prompt": p.prompt}) + "\n" for p in wanted))
    generated = out / "rehearsal_all.jsonl"
    code = generate_rehearsal.main(
        [
            "--base-model",
            args.base_model,
            "--prompts",
            str(prompts),
            "--output",
            str(generated),
            "--max-new-tokens",
            str(args.rehearsal_tokens),
            "--batch-size",
            "16",
        ]
    )
    if code:
        raise SystemExit(code)
    by_prompt = {
        ConversationRecord.from_json_line(line).turns()[0][1]: line
        for line in generated.read_text().splitlines()
    }
    train_prompts = {p.prompt for p in wanted[: args.rehearsal_train]}
    train_path.write_text(
        "".join(line + "\n" for prompt, line in by_prompt.items() if prompt in train_prompts)
    )
    heldout_path.write_text(
        "".join(line + "\n" for prompt, line in by_prompt.items() if prompt not in train_prompts)
    )
    return train_path, heldout_path


def make_mix(out: Path, domain: Path, rehearsal: Path, domain_percent: float, seed: int) -> Path:
    catalog = Catalog.parse(
        {
            "sources": [
                {
                    "name": "self-rehearsal",
                    "category": "rehearsal",
                    "uri": str(rehearsal),
                    "format": "prepared",
                }
            ]
        }
    )
    spec = MixSpec.parse({"domain_percent": domain_percent, "categories": {"rehearsal": 100}, "seed": seed})
    mix_datasets(str(domain), catalog, spec, str(out / "mix"))
    return out / "mix" / "mixed.jsonl"


def train_adapter(name: str, data: Path, out: Path, args: argparse.Namespace) -> Path:
    from mixtune_training.train import train

    target = out / name
    if not (target / "metrics.json").is_file():
        train(
            TrainConfig(
                base_model=args.base_model,
                data=str(data),
                output=str(target),
                max_steps=args.steps,
                per_device_batch_size=8,
                learning_rate=args.learning_rate,
                max_length=384,
                seed=args.seed,
                logging_steps=10,
            )
        )
    return target


def score(name: str, adapter: Path | None, config: EvalConfig, out: Path) -> EvalResult:
    from mixtune_training.evaluate import evaluate

    path = out / f"eval_{name}.json"
    if path.is_file():
        return EvalResult.from_json(path.read_bytes())
    result = evaluate(config.model_copy(update={"adapter": str(adapter) if adapter else None}))
    path.write_bytes(result.to_json())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--out", required=True, help="work folder; finished steps are reused on a rerun")
    parser.add_argument("--domain-train", type=int, default=240)
    parser.add_argument("--domain-eval", type=int, default=96)
    parser.add_argument("--domain-percent", type=float, default=60.0)
    parser.add_argument("--rehearsal-train", type=int, default=160)
    parser.add_argument("--rehearsal-heldout", type=int, default=32)
    parser.add_argument("--rehearsal-tokens", type=int, default=48)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--mmlu-per-subject", type=int, default=15)
    parser.add_argument("--mmlu-source", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of the script itself")
    args = parser.parse_args(argv)
    if args.quick:
        args.domain_train, args.domain_eval, args.rehearsal_train, args.rehearsal_heldout = 24, 12, 16, 8
        args.rehearsal_tokens, args.steps, args.mmlu_per_subject = 8, 3, 2

    from mixtune_training.common import quiet_progress

    quiet_progress()
    started = time.monotonic()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    domain = write_domain(out / "domain_train.jsonl", args.domain_train, seed=args.seed)
    domain_eval = write_domain(out / "domain_eval.jsonl", args.domain_eval, seed=args.seed + 1)
    rehearsal_train, rehearsal_heldout = make_rehearsal(out, args)
    mixed = make_mix(out, domain, rehearsal_train, args.domain_percent, args.seed)
    print(f"data ready ({time.monotonic() - started:.0f} s)", file=sys.stderr)

    config = EvalConfig(
        base_model=args.base_model,
        domain_data=str(domain_eval),
        domain_task="classification",
        labels=list(INTENTS),
        max_new_tokens=8,
        mmlu_source=args.mmlu_source,
        mmlu_subjects=MMLU_SUBJECTS,
        mmlu_limit_per_subject=args.mmlu_per_subject,
        general_data=str(rehearsal_heldout),
        batch_size=16,
    )
    domain_run = train_adapter("domain_only", domain, out, args)
    mixed_run = train_adapter(f"mixed_{int(args.domain_percent)}", mixed, out, args)
    results = {
        "base": score("base", None, config, out),
        "domain-only": score("domain_only", domain_run, config, out),
        f"mixed {int(args.domain_percent)}/{100 - int(args.domain_percent)}": score(
            "mixed", mixed_run, config, out
        ),
    }
    mixed_records = sum(1 for _ in mixed.open())
    print(
        f"\n{args.base_model}; LoRA r16, {args.steps} steps x batch 8, lr {args.learning_rate}; domain train "
        f"{args.domain_train}, mix {mixed_records} records; eval: {args.domain_eval} domain, "
        f"{args.rehearsal_heldout} held-out rehearsal prompts, MMLU {len(MMLU_SUBJECTS)} subjects x "
        f"{args.mmlu_per_subject} (0-shot); eval config {config.config_hash()}\n"
    )
    print("| model | domain macro-F1 | general loss (held-out rehearsal) | MMLU subset acc |")
    print("| --- | ---: | ---: | ---: |")
    summary = {}
    for name, r in results.items():
        f1 = r.domain.headline if r.domain else float("nan")
        loss = r.general.loss if r.general else float("nan")
        mmlu = r.mmlu.micro_accuracy if r.mmlu else float("nan")
        summary[name] = {
            "domain_macro_f1": f1,
            "general_loss": loss,
            "mmlu_accuracy": mmlu,
            "mmlu_n": r.mmlu.n if r.mmlu else 0,
        }
        print(f"| {name} | {f1:.3f} | {loss:.3f} | {mmlu:.3f} |")
    (out / "results.json").write_text(json.dumps({"args": vars(args), "results": summary}, indent=2))
    print(f"\ntotal {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
