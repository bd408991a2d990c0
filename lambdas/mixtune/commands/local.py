"""`mixtune local up|down|status`: the whole service on this machine (see docs/local.md)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from typing import Any

from mixtune.cli import UsageError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("local", help="run the whole service on this machine (AWS emulated)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    up = actions.add_parser("up", help="start the local cloud and deploy the service into it")
    up.add_argument("--port", type=int, default=4566, help="AWS endpoint port (0: a free one; default 4566)")
    up.add_argument(
        "--api-port", type=int, default=4567, help="API Gateway port (0: a free one; default 4567)"
    )
    up.add_argument("--state-dir", default=None, help="state folder (default .mixtune/local)")
    up.add_argument(
        "--lambda-mode",
        choices=("warm", "subprocess", "in_process"),
        default="warm",
        help="how handlers run: warm worker processes (default), a process per invoke, or in this process",
    )
    up.add_argument("--schedule", default="rate(1 day)", help="the schedule rule's expression ('' for none)")
    up.add_argument(
        "--function-sizes",
        metavar="JSON",
        help='override Lambda sizes, as the CDK context functionSizes: {"prepare": {"memory_mb": 3008, '
        '"timeout_s": 900, "ephemeral_mb": 4096}}',
    )
    up.set_defaults(func=run_up)

    down = actions.add_parser("down", help="stop the running local cloud")
    down.add_argument("--state-dir", default=None)
    down.set_defaults(func=run_down)

    status = actions.add_parser("status", help="show the running local cloud's endpoints")
    status.add_argument("--state-dir", default=None)
    status.set_defaults(func=run_status)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _print_endpoints(state: Any) -> None:
    res = state.resources
    print(f"mixtune local cloud running (pid {state.pid})")
    print(f"  AWS endpoint      {state.endpoint}   (export AWS_ENDPOINT_URL={state.endpoint})")
    print(f"  API               {state.api_endpoint}/runs")
    print(f"  raw bucket        s3://{res.raw_bucket}/incoming/   (drop a dataset here)")
    print(f"  work bucket       s3://{res.work_bucket}/")
    print(f"  runs table        {res.runs_table}")
    print(f"  topic             {res.topic_arn}")
    print(f"  state machine     {res.state_machine_arn}")
    print(f"  function logs     {state.log_dir}/")


def _function_sizes(text: str | None) -> dict[str, Any] | None:
    from mixtune.functions import resized_functions

    if not text:
        return None
    try:
        sizes = json.loads(text)
        resized_functions(sizes)  # refuse unknown functions and sizes past Lambda's limits here
    except (ValueError, TypeError, AttributeError) as exc:
        raise UsageError(f"--function-sizes: {exc}") from None
    return dict(sizes)


def run_up(args: argparse.Namespace) -> int:
    from mixtune.local.cloud import LocalCloud
    from mixtune.local.state import read_state

    existing = read_state(args.state_dir)
    if existing is not None and _alive(existing.pid):
        raise UsageError(f"a local cloud is already running (pid {existing.pid}); `mixtune local down` first")
    stop = threading.Event()
    # Both set explicitly: a process started in the background inherits SIGINT ignored.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sizes = _function_sizes(args.function_sizes)
    cloud = LocalCloud(
        port=args.port,
        api_port=args.api_port,
        lambda_mode=args.lambda_mode,
        state_dir=args.state_dir,
        schedule=args.schedule,
        function_sizes=sizes,
    )
    try:
        state = cloud.start()
    except OSError as exc:
        raise UsageError(f"cannot start the local cloud: {exc}") from exc
    try:
        _print_endpoints(state)
        print("Ctrl-C or `mixtune local down` stops it.", flush=True)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping the local cloud...", file=sys.stderr, flush=True)
        cloud.stop()
        print("stopped", file=sys.stderr, flush=True)
        sys.stdout.flush()
    # Everything is stopped: skip the interpreter's final garbage collection, which takes
    # tens of seconds over moto's backends.
    os._exit(0)


def _alive(pid: int) -> bool:
    import psutil

    return psutil.pid_exists(pid)


def run_down(args: argparse.Namespace) -> int:
    from mixtune.local.process import stop_pid
    from mixtune.local.state import read_state, state_path

    state = read_state(args.state_dir)
    if state is None:
        print("no local cloud is running")
        return 0
    if stop_pid(state.pid):
        print(f"stopped the local cloud (pid {state.pid})")
    else:
        print(f"the local cloud (pid {state.pid}) was not running; removed its state file")
    state_path(args.state_dir).unlink(missing_ok=True)
    return 0


def run_status(args: argparse.Namespace) -> int:
    from mixtune.local.state import read_state

    state = read_state(args.state_dir)
    if state is None or not _alive(state.pid):
        print("no local cloud is running")
        return 1
    _print_endpoints(state)
    return 0
