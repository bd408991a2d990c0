"""`mixtune mix`: blend a prepared domain file with general catalog data.

Exit codes: 0 mixed (or planned, with --dry-run), 1 the data cannot give the mix asked for
(too small with on_small_source: fail, an empty category, a rejected source), 2 a bad spec,
catalog or argument, or an unreadable file (one line, never a traceback).

``python -m mixtune.commands.mix ARGS`` is ``mixtune mix ARGS``: the mix job's entry point
(``mixtune.backends.base.ENTRY_MODULES``).
"""

from __future__ import annotations

import sys
from typing import Any

from mixtune.cli import UsageError
from mixtune.dataprep.errors import DatasetError
from mixtune.mixing import Catalog, MixError, MixSpec, SpecError, mix_datasets
from mixtune.mixing.mixer import manifest_bytes


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mix",
        help="mix a prepared domain file with general data at an exact, reproducible ratio",
        description="Blend a prepared domain file (from `mixtune prepare`) with general data from a "
        "catalog, as a mix spec says (domain percent, category percents, examples or tokens, seed). "
        "Writes mixed.jsonl and manifest.json under --out.",
    )
    parser.add_argument(
        "--domain", required=True, metavar="PREPARED.jsonl", help="prepared domain file (or s3://)"
    )
    parser.add_argument(
        "--catalog",
        metavar="CATALOG",
        help="general-data catalog, YAML or JSON (without one, only a 100%% domain spec can be mixed)",
    )
    parser.add_argument("--spec", required=True, metavar="SPEC", help="mix spec, YAML or JSON")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder or s3:// prefix")
    parser.add_argument("--seed", type=int, help="override the spec's seed")
    parser.add_argument(
        "--decontaminate",
        action="append",
        default=[],
        metavar="EVAL",
        help="evaluation set(s) to decontaminate against: eval.jsonl, a CSV of questions, a folder (repeatable)",
    )
    parser.add_argument(
        "--no-token-counts",
        action="store_true",
        help="skip token counts in examples mode (about a fifth faster on large mixes; the manifest then has none)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan; write no data")
    parser.add_argument("--json", action="store_true", help="print the manifest instead of the plan")
    parser.set_defaults(func=run)


def run(args: Any) -> int:
    try:
        spec = MixSpec.load(args.spec)
        if args.seed is not None:
            spec = MixSpec.parse({**spec.model_dump(), "seed": args.seed})
        catalog = Catalog.load(args.catalog) if args.catalog else Catalog()
        manifest = mix_datasets(
            args.domain,
            catalog,
            spec,
            args.out,
            decontaminate_against=args.decontaminate,
            dry_run=args.dry_run,
            count_tokens=not args.no_token_counts,
        )
    except SpecError as exc:  # CatalogError too
        raise UsageError(str(exc)) from None
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    except MixError as exc:
        print(f"mixtune mix: rejected: {exc}", file=sys.stderr)
        return 1
    if args.json:
        sys.stdout.write(manifest_bytes(manifest).decode())
    else:
        print("\n".join(manifest.plan_lines()))
        if args.dry_run:
            print("dry run: nothing written")
        else:
            print(
                f"wrote {manifest.output.uri} ({manifest.output.records} records, sha256 {manifest.output.sha256})"
            )
    return 0


if __name__ == "__main__":  # the mix job's entry point: `mixtune mix`
    from mixtune.cli import main

    sys.exit(main(["mix", *sys.argv[1:]]))
