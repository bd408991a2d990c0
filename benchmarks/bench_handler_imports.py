"""Cold-import time of every Lambda handler module, by `python -X importtime`.

Each module is imported in a fresh interpreter (best of --repeat); the figure is the
cumulative time `-X importtime` reports for the handler module itself, which is what a
Lambda cold start pays before the first event. Wall-clock: run it on an idle machine.
Exits 1 when a handler is over the budget (300 ms by default).

    .venv/bin/python benchmarks/bench_handler_imports.py
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys

from mixtune.functions import FUNCTIONS


def cold_import_us(module: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.startswith(("MIXTUNE_", "POWERTOOLS_"))},
        check=True,
    )
    pattern = re.compile(rf"import time:\s+\d+ \|\s+(\d+) \| {re.escape(module)}$", re.MULTILINE)
    match = pattern.search(proc.stderr)
    if not match:
        raise RuntimeError(f"no importtime line for {module}")
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget-ms", type=float, default=300.0)
    args = parser.parse_args()
    over = []
    print(f"{'handler module':40} {'best ms':>8}  (of {args.repeat}, budget {args.budget_ms:.0f} ms)")
    for module in sorted({fn.handler.rpartition(".")[0] for fn in FUNCTIONS}):
        best_ms = min(cold_import_us(module) for _ in range(args.repeat)) / 1000
        print(f"{module:40} {best_ms:8.0f}")
        if best_ms > args.budget_ms:
            over.append(module)
    if over:
        print(f"over budget: {', '.join(over)}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
