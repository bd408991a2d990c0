"""``mixtune-generate-rehearsal``: the base model answers the prompt bank (self-rehearsal data).

Each answer becomes a Converse record (user prompt, assistant answer) in a JSONL file that
the mixing catalog lists as a general-data source: training on the model's own answers keeps
its general behaviour while the domain data teaches the new task.

Only answers that ended on their own are kept: an answer cut at ``--max-new-tokens`` would be
trained with an end-of-turn marker it never produced, teaching the model to stop early. The
dropped answers are counted (stdout and the manifest). ``--for-mix SPEC --domain-records N``
answers as many prompts as the mix needs; the prompt bank's size is the ceiling.
"""

from __future__ import annotations

import argparse
import importlib.resources
from typing import NamedTuple

import orjson

from mixtune import storage
from mixtune.records import ConversationRecord
from mixtune_training.common import TrainingError, dump_json, quiet_progress, run_main, write_records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixtune-generate-rehearsal", description=__doc__.splitlines()[0])
    parser.add_argument("--base-model", default="smollm2")
    parser.add_argument("--prompts", help="JSONL with a 'prompt' field (default: the built-in prompt bank)")
    parser.add_argument(
        "--output", required=True, help="a .jsonl file, or a folder/s3:// prefix for rehearsal.jsonl"
    )
    parser.add_argument("--limit", type=int, default=None, help="answer only the first N prompts")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--system", default=None, help="system prompt for every record")
    parser.add_argument("--min-chars", type=int, default=1, help="drop answers shorter than this")
    parser.add_argument(
        "--keep-truncated",
        action="store_true",
        help="keep answers cut at --max-new-tokens too (counted in the manifest; for a random test model "
        "whose answers never end)",
    )
    parser.add_argument(
        "--for-mix", metavar="SPEC", help="a mix spec (YAML/JSON): answer as many prompts as it needs"
    )
    parser.add_argument("--domain-records", type=int, help="with --for-mix: records in the domain file")
    parser.add_argument(
        "--category", help="with --for-mix: the spec's category this file feeds (default: its only one)"
    )
    return parser


def records_for_mix(spec_uri: str, domain_records: int | None, category: str | None) -> int:
    """General records the mix needs from this file, each used once."""
    from mixtune.mixing.spec import MixSpec, SpecError

    if domain_records is None or domain_records <= 0:
        raise TrainingError("--for-mix needs --domain-records N (the records in the domain file)")
    try:
        needed = MixSpec.load(spec_uri).general_records_needed(domain_records)
    except SpecError as exc:
        raise TrainingError(str(exc)) from None
    if category is None:
        if len(needed) != 1:
            raise TrainingError(f"the spec has categories {sorted(needed)}: pick one with --category")
        category = next(iter(needed))
    if category not in needed:
        raise TrainingError(
            f"category {category!r} is not in the spec (it has {', '.join(sorted(needed)) or 'none'})"
        )
    return needed[category]


def load_prompts(path: str | None) -> list[tuple[str, str]]:
    """(id, prompt) pairs from ``path``, else from mixtune.mixing's prompt bank."""
    if path is not None:
        if not storage.exists(path):
            raise TrainingError(f"prompts not found: {path}")
        prompts: list[tuple[str, str]] = []
        for line_no, line in enumerate(storage.read_bytes(path).splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                prompts.append((str(row.get("id", line_no)), str(row["prompt"])))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                raise TrainingError(
                    f"{path} line {line_no}: expected a JSON object with a 'prompt'"
                ) from None
        return prompts
    try:
        from mixtune.mixing import load_prompt_bank  # type: ignore[attr-defined]

        return [(p.id, p.prompt) for p in load_prompt_bank()]
    except ImportError:
        bank = importlib.resources.files("mixtune.mixing") / "prompt_bank.jsonl"
        if not bank.is_file():
            raise TrainingError("no prompt bank in mixtune.mixing; pass --prompts FILE") from None
        with importlib.resources.as_file(bank) as bank_path:
            return load_prompts(str(bank_path))


def output_uri(output: str) -> str:
    return output if output.endswith(".jsonl") else storage.join(output, "rehearsal.jsonl")


class Outcome(NamedTuple):
    records: list[ConversationRecord]
    prompts: int  # prompts answered
    truncated: int  # answers cut at max_new_tokens: dropped
    too_short: int  # answers under --min-chars: dropped
    needed: int | None  # what --for-mix asked for


def generate(args: argparse.Namespace) -> Outcome:
    from mixtune_training.models import load_for_inference
    from mixtune_training.scoring import generate_answers

    quiet_progress()
    bank = load_prompts(args.prompts)
    needed = records_for_mix(args.for_mix, args.domain_records, args.category) if args.for_mix else None
    limit = args.limit if needed is None else min(needed, args.limit or needed)
    prompts = bank[:limit]
    if needed is not None and needed > len(bank):
        print(
            f"warning: the mix needs {needed:,} general records but the prompt bank holds {len(bank):,} prompts "
            f"(its ceiling): the mix would repeat them {needed / len(bank):.1f}x. Add a general catalog source "
            "(a prepared corpus of instruction/answer records, e.g. an open instruction dataset converted by "
            "`mixtune prepare`) or a larger --prompts file",
            flush=True,
        )
    if not prompts:
        raise TrainingError("no prompts to answer")
    model, tokenizer = load_for_inference(args.base_model)
    questions = [
        ConversationRecord.from_turns([("user", text), ("assistant", "")], system=args.system)
        for _, text in prompts
    ]
    answers = generate_answers(model, tokenizer, questions, args.max_new_tokens, args.batch_size)
    records = [
        ConversationRecord.from_turns([("user", text), ("assistant", answer.text)], system=args.system)
        for (_, text), answer in zip(prompts, answers, strict=True)
        if (answer.finished or args.keep_truncated) and len(answer.text) >= args.min_chars
    ]
    truncated = sum(1 for a in answers if not a.finished)
    too_short = sum(
        1 for a in answers if (a.finished or args.keep_truncated) and len(a.text) < args.min_chars
    )
    if not records:
        raise TrainingError(
            f"none of {len(prompts)} answers ended within --max-new-tokens {args.max_new_tokens} "
            f"({truncated} cut, {too_short} too short): raise --max-new-tokens (or --keep-truncated)"
        )
    return Outcome(records, len(prompts), truncated, too_short, needed)


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        outcome = generate(args)
        target = output_uri(args.output)
        write_records(outcome.records, target)
        manifest = {
            "base_model": args.base_model,
            "prompts": args.prompts or "mixtune.mixing prompt bank",
            "records": len(outcome.records),
            "answered": outcome.prompts,
            "truncated": outcome.truncated,
            "truncated_kept": args.keep_truncated,
            "dropped_too_short": outcome.too_short,
            "needed_for_mix": outcome.needed,
            "limit": args.limit,
            "max_new_tokens": args.max_new_tokens,
            "sha256": storage.sha256_of(target),
        }
        storage.write_bytes(target[: -len(".jsonl")] + ".manifest.json", dump_json(manifest))
        cut = "kept" if args.keep_truncated else "dropped"
        print(
            f"wrote {len(outcome.records)} rehearsal records -> {target} ({outcome.prompts} answered; "
            f"{outcome.truncated} cut at --max-new-tokens {args.max_new_tokens} ({cut}), "
            f"{outcome.too_short} too short (dropped))"
        )
        if outcome.needed is not None and len(outcome.records) < outcome.needed:
            print(
                f"warning: {len(outcome.records):,} of the {outcome.needed:,} general records the mix needs"
            )
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
