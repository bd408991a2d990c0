"""`python -m mixtune.local.lambda_worker HANDLER`: run Lambda invokes in this process.

One-shot (default): reads the event as JSON on stdin and prints the result (or the Lambda
error payload) as the last line of stdout; exit code 1 marks a function error.

`--serve`: a warm worker, like a Lambda execution environment kept between invokes. It
imports the handler first and says ``{"ready": true}`` (Lambda's init, which does not count
towards an invocation's timeout); then each line on stdin is ``{"event": ..., "tmpdir": ...}``
(the invocation's own temporary folder) and each reply line on stdout is
``{"payload": ..., "errored": ...}``.

In both modes the protocol streams are private copies of stdin/stdout: the handler's own
prints go to stderr, and a process the handler launches (a detached training job) inherits
/dev/null and stderr, so it can never corrupt the protocol or hold its pipe open.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import IO, Any

from mixtune.local.invoke import (
    call_handler,
    clear_cached_settings,
    context_for,
    error_payload,
    resolve_handler,
)


def _private_streams() -> tuple[IO[str], IO[str]]:
    proto_in = os.fdopen(os.dup(0), "r")
    proto_out = os.fdopen(os.dup(1), "w")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout.flush()
    os.dup2(2, 1)
    return proto_in, proto_out


def _invoke(handler: str, event: Any) -> tuple[str, bool]:
    context = context_for(dict(os.environ), handler)
    try:
        result = call_handler(handler, {}, event, context)
    except Exception as exc:  # the runtime boundary: every failure becomes a Lambda error
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
        return json.dumps(error_payload(exc)), True
    return json.dumps(result, default=str), False


def _use_tmpdir(path: str) -> None:
    """The invocation's temporary folder: where ``tempfile`` puts everything from now on."""
    os.environ["TMPDIR"] = path
    tempfile.tempdir = path


def serve(handler: str, proto_in: IO[str], proto_out: IO[str]) -> int:
    with contextlib.suppress(Exception):  # an import error is raised again, and answered, at invoke
        resolve_handler(handler)
        context_for(dict(os.environ), handler)  # the runtime's own imports are init too
        clear_cached_settings()
    proto_out.write(json.dumps({"ready": True}) + "\n")
    proto_out.flush()
    for line in proto_in:
        if not line.strip():
            continue
        request = json.loads(line)
        _use_tmpdir(request["tmpdir"])
        payload, errored = _invoke(handler, request["event"])
        proto_out.write(json.dumps({"payload": payload, "errored": errored}) + "\n")
        proto_out.flush()
        sys.stderr.flush()
    return 0


def main() -> int:
    args = sys.argv[1:]
    proto_in, proto_out = _private_streams()
    if args and args[0] == "--serve":
        return serve(args[1], proto_in, proto_out)
    event = json.loads(proto_in.read() or "{}")
    payload, errored = _invoke(args[0], event)
    proto_out.write(payload + "\n")
    proto_out.flush()
    return 1 if errored else 0


if __name__ == "__main__":
    sys.exit(main())
