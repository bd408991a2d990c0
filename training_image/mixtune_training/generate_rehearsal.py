"""``mixtune-generate-rehearsal``: the base model answers the prompt bank (self-rehearsal data).

Each answer becomes a Converse record (user prompt, assistant answer) in a JSONL file that
the mixing catalog lists as a general-data source: training on the model's own answers keeps
its general behaviour while the domain data teaches the new task.
"""

from __future__ import annotations

import argparse
import importlib.resources

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
    return parser


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


def generate(args: argparse.Namespace) -> list[ConversationRecord]:
    from mixtune_training.models import load_for_inference
    from mixtune_training.scoring import generate_answers

    quiet_progress()
    prompts = load_prompts(args.prompts)[: args.limit]
    if not prompts:
        raise TrainingError("no prompts to answer")
    model, tokenizer = load_for_inference(args.base_model)
    questions = [
        ConversationRecord.from_turns([("user", text), ("assistant", "")], system=args.system)
        for _, text in prompts
    ]
    answers = generate_answers(model, tokenizer, questions, args.max_new_tokens, args.batch_size)
    return [
        ConversationRecord.from_turns([("user", text), ("assistant", answer)], system=args.system)
        for (_, text), answer in zip(prompts, answers, strict=True)
        if len(answer) >= args.min_chars
    ]


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        args = build_parser().parse_args(argv)
        records = generate(args)
        target = output_uri(args.output)
        write_records(records, target)
        manifest = {
            "base_model": args.base_model,
            "prompts": args.prompts or "mixtune.mixing prompt bank",
            "records": len(records),
            "limit": args.limit,
            "max_new_tokens": args.max_new_tokens,
            "sha256": storage.sha256_of(target),
        }
        storage.write_bytes(target[: -len(".jsonl")] + ".manifest.json", dump_json(manifest))
        print(f"wrote {len(records)} rehearsal records -> {target}")
        return 0

    return run_main(body)


if __name__ == "__main__":
    raise SystemExit(main())
