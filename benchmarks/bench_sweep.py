"""A sweep against its arms run one by one: what sharing the prepare, the smoke run and the
baseline evaluation (and training two arms at once) saves in wall time.

    .venv/bin/python benchmarks/bench_sweep.py                  # quick plan (tiny model), 100,75,50
    .venv/bin/python benchmarks/bench_sweep.py --plan full      # SmolLM2 (long: about an hour here)

Runs the demo's plan (mixtune.demo.runner) as one sweep, then each arm as a single run with
that arm's domain share, each in a fresh local cloud (same data, same cached rehearsal set).
Prints each run's own wall time (run created -> outcome recorded, from the run item: the local
cloud's start-up is not counted), the sum of the single runs and the sweep's. A benchmark,
not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import signal
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def run_seconds(summary_path: Path) -> tuple[str, float]:
    """(status, seconds from the run's creation to its last update) from the report's summary.json."""
    summary = json.loads(summary_path.read_text())
    created = datetime.fromisoformat(summary["created_at"])
    ended = datetime.fromisoformat(summary["updated_at"]) if summary.get("updated_at") else None
    if ended is None:
        return summary["status"], float(summary.get("wall_time_s") or 0.0)
    return summary["status"], (ended - created).total_seconds()


def run_plan(plan: Any, out: Path) -> tuple[str, float, float]:
    from rich.console import Console

    from mixtune.demo.runner import Demo

    started = time.monotonic()
    console = Console(file=io.StringIO(), width=120)
    Demo(plan, out / plan.name, console).run()
    status, seconds = run_seconds(out / plan.name / "report" / "summary.json")
    return status, seconds, time.monotonic() - started


def main() -> int:
    from mixtune.demo.runner import FULL, QUICK
    from mixtune.demo.sweep import sweep_plan

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", choices=("quick", "full"), default="quick")
    parser.add_argument("--arms", default="100,75,50")
    args = parser.parse_args()

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so the local cloud stops its workers and jobs on the way out

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)
    arms = [float(a) for a in args.arms.split(",")]
    base = QUICK if args.plan == "quick" else FULL
    sweep = sweep_plan(base, arms)
    out = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    rows = []
    status, seconds, wall = run_plan(sweep, out)
    rows.append((f"sweep {args.arms}", status, seconds, wall))
    print(f"sweep {args.arms}: {status}, run {seconds:.0f} s (demo wall {wall:.0f} s)", flush=True)
    singles = 0.0
    for share in arms:
        # the same data and rehearsal set as the sweep: only the mix's domain share differs
        single = sweep.model_copy(
            update={"name": f"single-{share:g}", "sweep": None, "domain_percent": share}
        )
        status, seconds, wall = run_plan(single, out)
        singles += seconds
        rows.append((f"single {share:g}% domain", status, seconds, wall))
        print(f"single {share:g}% domain: {status}, run {seconds:.0f} s (demo wall {wall:.0f} s)", flush=True)
    print()
    print(f"{'run':<24}{'status':<20}{'run s':>8}{'demo wall s':>13}")
    for name, status, seconds, wall in rows:
        print(f"{name:<24}{status:<20}{seconds:>8.0f}{wall:>13.0f}")
    print(f"{'sum of single runs':<44}{singles:>8.0f}")
    print(f"sweep / sum of single runs: {rows[0][2] / singles:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
