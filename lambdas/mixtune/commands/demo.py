"""`mixtune demo [--quick]`: the whole pipeline on this machine, followed live, with a report."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline locally on generated sample data (SmolLM2-135M; --quick: a tiny model)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a tiny random model that learns four intents: a few minutes on two cores",
    )
    parser.add_argument(
        "--sweep",
        nargs="?",
        const="100,75,50",
        default=None,
        metavar="SHARES",
        help="a mix-ratio sweep: train several mixes in one run and keep the best (default 100,75,50)",
    )
    parser.add_argument("--out", default=".mixtune/demo", help="where the data, logs and report go")
    parser.add_argument("--train-steps", type=int, default=None, help="override the plan's LoRA steps")
    parser.add_argument(
        "--timeout", type=int, default=None, help="seconds to follow the run before giving up"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mixtune.demo.runner import FULL, QUICK, Demo
    from mixtune.report.console import output_console

    plan = QUICK if args.quick else FULL
    if args.train_steps:
        plan = plan.model_copy(update={"train_steps": args.train_steps})
    if args.sweep:
        from mixtune.commands.runs import sweep_arms
        from mixtune.demo.sweep import sweep_plan

        plan = sweep_plan(plan, sweep_arms(args.sweep))
    if args.timeout:
        plan = plan.model_copy(update={"timeout_s": args.timeout})

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # so the local cloud stops its workers and jobs on the way out

    # Set explicitly: a process started in the background inherits SIGINT ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, interrupt)
    console = output_console()
    console.rule(
        f"mixtune demo: {plan.base_model}, "
        + (
            f"sweep of {len(plan.sweep)} mixes"
            if plan.sweep
            else f"{plan.domain_percent:.0f}/{100 - plan.domain_percent:.0f} mix"
        )
    )
    code = Demo(plan, Path(args.out) / plan.name, console).run()
    sys.stdout.flush()
    sys.stderr.flush()
    # The local cloud is stopped: skip the interpreter's final garbage collection, which takes
    # tens of seconds over moto's backends.
    os._exit(code)
