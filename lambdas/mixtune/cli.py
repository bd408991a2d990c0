"""The `mixtune` command: a thin dispatcher over `mixtune.commands.*`.

Each command module exposes ``register(subparsers)``, which adds its sub-command and sets
``func`` (taking the parsed args, returning the exit code). Exit codes everywhere:
0 success, 1 the data or run was rejected, 2 usage error or unreadable input.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ("prepare", "mix", "local", "demo", "runs", "backends")


class UsageError(Exception):
    """A bad argument or unreadable input: printed as one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixtune",
        description="Fine-tune an LLM on domain data without forgetting general ability.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"mixtune.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"mixtune.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"mixtune {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module, not `__main__`, so that `UsageError` raised by the
    # command modules is the very class `main` catches.
    from mixtune.cli import main as _main

    sys.exit(_main())
