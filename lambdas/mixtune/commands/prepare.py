"""`mixtune prepare`: load, convert, sanitize, validate and split one dataset file.

Exit codes: 0 the dataset was accepted, 1 it was rejected, 2 usage error or unreadable input
(one line naming the file and, where there is one, the line; never a traceback).
``--exit-zero`` (the pipeline's prepare job): 0 for a rejected dataset too, the verdict in
report.json.

``python -m mixtune.commands.prepare ARGS`` is ``mixtune prepare ARGS``: the prepare job's
entry point (``mixtune.backends.base.ENTRY_MODULES``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mixtune import storage
from mixtune.cli import UsageError
from mixtune.dataprep import DatasetError, PrepareOptions, PrepareReport, Progress, prepare_dataset
from mixtune.dataprep.convert import MAPPING_KEYS
from mixtune.dataprep.report import DEFAULT_MAX_TOKENS
from mixtune.layout import PREPARE_REPORT


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="prepare a dataset file for fine-tuning (convert, sanitize, validate, split)",
        description="Convert a JSONL/JSON/CSV/TSV/Parquet file (local or s3://) to Converse records, "
        "repair template collisions, reject invalid records with their line numbers, and write "
        "prepared.jsonl, eval.jsonl, rejected.jsonl and report.json.",
    )
    parser.add_argument("input", help="the dataset file: a local path or s3://bucket/key")
    parser.add_argument(
        "--map",
        action="append",
        metavar="ROLE=COL[,ROLE=COL]",
        help=f"column mapping; roles: {', '.join(sorted(MAPPING_KEYS))} (repeatable)",
    )
    parser.add_argument("--system", metavar="TEXT", help="system prompt for records without one")
    parser.add_argument(
        "--template", metavar="TEXT", help="user-turn template; {text} is replaced by the input"
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output folder or s3:// prefix (default: ./prepared/<name>)"
    )
    parser.add_argument(
        "--format", choices=["jsonl", "json", "csv", "tsv", "parquet"], help="default: by suffix"
    )
    parser.add_argument("--strict", action="store_true", help="reject the dataset if any record is rejected")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=DEFAULT_MAX_TOKENS,
        metavar="N",
        help=f"reject records longer than N tokens (default {DEFAULT_MAX_TOKENS:,}: a cap no training length "
        "reaches, since the CLI does not know yours; the report counts records over 1k/2k/4k/8k tokens to "
        "choose one; --max-tokens 0 turns the limit off)",
    )
    parser.add_argument("--tokenizer", metavar="DIR", help="count tokens with this local tokenizer folder")
    parser.add_argument(
        "--max-reject-share", type=float, default=0.05, metavar="F", help="filter mode limit (0.05)"
    )
    parser.add_argument(
        "--eval-share", type=float, default=0.1, metavar="F", help="share held out for eval (0.1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="split seed (0)")
    parser.add_argument("--min-records", type=int, default=1, metavar="N")
    parser.add_argument("--max-records", type=int, metavar="N")
    parser.add_argument(
        "--no-sanitize", action="store_true", help="reject reserved strings instead of repairing"
    )
    parser.add_argument("--keep-duplicates", action="store_true", help="do not reject exact duplicates")
    parser.add_argument(
        "--progress", action="store_true", help="show progress even when stderr is not a terminal"
    )
    parser.add_argument("--json", action="store_true", help="print report.json instead of the summary")
    parser.add_argument(
        "--options",
        metavar="JSON",
        help="PrepareOptions fields as a JSON object, over the flags above (how the pipeline's prepare "
        "job passes a run's options)",
    )
    parser.add_argument(
        "--exit-zero",
        action="store_true",
        help="exit 0 when the dataset is rejected, a file unusable as a whole included (its report.json "
        "then says why): the verdict is in report.json (for pipelines)",
    )
    parser.set_defaults(func=run)


def parse_mapping(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    mapping: dict[str, str] = {}
    for value in values:
        for item in value.split(","):
            if not item.strip():
                continue
            role, sep, column = item.partition("=")
            role, column = role.strip().lower(), column.strip()
            if not sep or not role or not column:
                raise UsageError(f"--map expects ROLE=COLUMN pairs, got {item!r}")
            if role not in MAPPING_KEYS:
                raise UsageError(f"--map: unknown role {role!r}; use {', '.join(sorted(MAPPING_KEYS))}")
            mapping[role] = column
    return mapping


def _default_out(source: str) -> str:
    name = source.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gz", ".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq"):
        name = name.removesuffix(suffix)
    return str(Path("prepared") / (name or "dataset"))


class _ProgressLine:
    """A single self-rewriting stderr line, at most a few times a second."""

    def __init__(self) -> None:
        self._last = 0.0
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        now = time.monotonic()
        if now - self._last < 0.25:
            return
        self._last = now
        share = f" {progress.bytes_read / progress.total_bytes:4.0%}" if progress.total_bytes else ""
        sys.stderr.write(f"\r  {progress.records:>12,} records{share}")
        sys.stderr.flush()
        self._shown = True

    def close(self) -> None:
        if self._shown:
            sys.stderr.write("\r" + " " * 40 + "\r")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    try:
        options = PrepareOptions(
            mapping=parse_mapping(args.map),
            system_prompt=args.system,
            instruction_template=args.template,
            format=args.format,
            strict=args.strict,
            max_reject_share=args.max_reject_share,
            max_tokens=args.max_tokens,
            tokenizer=args.tokenizer,
            eval_share=args.eval_share,
            seed=args.seed,
            min_records=args.min_records,
            max_records=args.max_records,
            sanitize=not args.no_sanitize,
            dedupe=not args.keep_duplicates,
        )
        if args.options:
            options = PrepareOptions.model_validate({**options.model_dump(), **_json_object(args.options)})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UsageError(f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from None
    if not storage.is_s3(args.input) and not os.path.isfile(args.input):
        raise UsageError(f"{args.input}: no such file")
    out = args.out or _default_out(args.input)
    show_progress = args.progress or sys.stderr.isatty()
    progress = _ProgressLine() if show_progress else None
    try:
        report = prepare_dataset(args.input, out, options, progress=progress)
    except DatasetError as exc:
        if not args.exit_zero:
            raise UsageError(str(exc)) from None
        report = PrepareReport.unusable(args.input, out, options, str(exc))
        storage.write_bytes(storage.join(out, PREPARE_REPORT), report.model_dump_json(indent=2).encode())
    except Exception as exc:  # one line, never a traceback (MIXTUNE_DEBUG=1 shows it)
        if os.environ.get("MIXTUNE_DEBUG"):
            raise
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise UsageError(f"{args.input}: {type(exc).__name__}: {detail}"[:500]) from None
    finally:
        if progress is not None:
            progress.close()
    print(report.model_dump_json(indent=2) if args.json else format_summary(report))
    return 0 if report.accepted or args.exit_zero else 1


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--options is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("--options must be a JSON object of PrepareOptions fields")
    return value


def format_summary(report: PrepareReport) -> str:
    """The readable multi-line summary the CLI prints (counts and rules, no dataset text)."""
    c = report.counts
    lines = [
        f"{report.source_uri}  ({report.format}, {report.shape or 'shape unknown'})",
        f"  records   {c.input:,} in: {c.kept:,} kept ({c.sanitized:,} sanitized), "
        f"{c.rejected:,} rejected ({report.reject_share:.1%})",
        f"  split     {c.train:,} train / {c.eval:,} eval (seed {report.options.seed})",
        f"  tokens    {report.tokens.total:,} total, {report.tokens.max:,} max per record ({report.tokens.method})",
        "  lengths   records over "
        + " / ".join(f"{n // 1024}k" for n in report.tokens.over)
        + " tokens: "
        + " / ".join(f"{count:,}" for count in report.tokens.over.values()),
    ]
    if report.labels is not None:
        lines.append(f"  labels    {len(report.labels):,}")
    if report.sanitize_counts:
        repairs = ", ".join(
            f"{rule} x{n}" for rule, n in sorted(report.sanitize_counts.items(), key=lambda i: -i[1])
        )
        lines.append(f"  repaired  {repairs}")
    if report.rule_counts:
        rules = ", ".join(
            f"{rule} x{n}" for rule, n in sorted(report.rule_counts.items(), key=lambda i: -i[1])
        )
        lines.append(f"  rejected  {rules}")
        for error in report.errors[:5]:
            lines.append(f"    line {error.line}: {error.rule}: {error.message}")
    lines.append(f"  output    {report.out_uri} (prepared.jsonl, eval.jsonl, rejected.jsonl, report.json)")
    if report.accepted:
        lines.append("ACCEPTED")
    else:
        lines.append("REJECTED: " + "; ".join(report.reasons))
    return "\n".join(lines)


if __name__ == "__main__":  # the prepare job's entry point: `mixtune prepare`
    from mixtune.cli import main

    sys.exit(main(["prepare", *sys.argv[1:]]))
