"""Run Lambda handlers for moto, which cannot run Lambda code without Docker.

Every invoke in moto (the Lambda API, S3 notifications, the Step Functions interpreter)
passes through ``LambdaFunction._invoke_lambda``; :func:`lambda_runtime` replaces it with a
runner that imports the function's handler and calls it, in this process (tests: no limits)
or in other processes (the local cloud server, so a handler's imports and environment stay
its own, within its function's timeout, memory and ephemeral storage: see
:mod:`mixtune.local.limits`). A handler's exception becomes the payload real Lambda returns
(``errorType``/``errorMessage``) with the function-error flag set, which is what the Step
Functions interpreter matches ``Retry`` and ``Catch`` against.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from mixtune.local.limits import (
    EPHEMERAL_VARIABLE,
    MEMORY_VARIABLE,
    TIMEOUT_VARIABLE,
    Limits,
    Watch,
    invocation_tmpdir,
)

# (handler "module.function", environment, event) -> (payload JSON, errored, log text)
Runner = Callable[[str, dict[str, str], Any], tuple[str, bool, str]]

_ENV_LOCK = threading.RLock()


# The function's timeout is also the context's remaining time (Powertools idempotency sizes
# its in-progress window by it: with a shorter one a duplicate event of a slow prepare got
# through).
def context_for(env: dict[str, str], handler: str) -> LambdaContext:
    return LambdaContext(
        function_name=env.get("AWS_LAMBDA_FUNCTION_NAME", handler),
        memory_limit_in_mb=int(env.get(MEMORY_VARIABLE, "256")),
        timeout_s=int(env.get(TIMEOUT_VARIABLE, "60")),
    )


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str
    memory_limit_in_mb: int = 256
    timeout_s: int = 60
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self._started)) * 1000))


def error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-3:],
    }


def resolve_handler(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, function_name = handler.rpartition(".")
    return getattr(importlib.import_module(module_name), function_name)


@contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def clear_cached_settings() -> None:
    from mixtune.settings import get_settings

    get_settings.cache_clear()


def call_handler(handler: str, env: dict[str, str], event: Any, context: LambdaContext) -> Any:
    """Call a handler with its environment applied; exceptions propagate."""
    with _ENV_LOCK, _environment(env):
        clear_cached_settings()
        try:
            return resolve_handler(handler)(event, context)
        finally:
            clear_cached_settings()


def run_in_process(handler: str, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
    context = context_for(env, handler)
    try:
        return json.dumps(call_handler(handler, env, event, context), default=str), False, ""
    except Exception as exc:  # the runtime boundary: every failure becomes a Lambda error
        return json.dumps(error_payload(exc)), True, "".join(traceback.format_exception(exc))


def run_in_subprocess(handler: str, env: dict[str, str], event: Any) -> tuple[str, bool, str]:
    """Run the handler in a fresh interpreter (`python -m mixtune.local.lambda_worker`), within
    its function's timeout, memory and ephemeral storage (:mod:`mixtune.local.limits`)."""
    # stderr goes to a file, not a pipe: a process the handler leaves running (a detached
    # training job) would otherwise hold the pipe open and block this call until it exits.
    with tempfile.TemporaryFile(mode="w+") as log, invocation_tmpdir() as tmpdir:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mixtune.local.lambda_worker", handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **env, "TMPDIR": str(tmpdir)},
        )
        with Watch(proc.pid, Limits.from_env(env), tmpdir) as watch:
            stdout, _ = proc.communicate(json.dumps(event))
        log.seek(0)
        logs = log.read()
    if watch.breach is not None:
        return watch.breach.payload(), True, logs
    if proc.returncode not in (0, 1) or not stdout.strip():
        payload = {"errorType": "Runtime.ExitError", "errorMessage": logs.strip()[-2000:]}
        return json.dumps(payload), True, logs
    return stdout.strip().splitlines()[-1], proc.returncode == 1, logs


RUNNERS: dict[str, Runner] = {"in_process": run_in_process, "subprocess": run_in_subprocess}


@contextmanager
def lambda_runtime(
    mode: Literal["in_process", "subprocess"] | Runner = "in_process",
    extra_env: dict[str, str] | None = None,
) -> Iterator[None]:
    """Make moto run Lambda functions' handlers with ``mode`` while the context is open."""
    from moto.awslambda.models import LambdaFunction

    runner = RUNNERS[mode] if isinstance(mode, str) else mode
    original = LambdaFunction._invoke_lambda

    def invoke(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        env = {
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            MEMORY_VARIABLE: str(self.memory_size),
            TIMEOUT_VARIABLE: str(self.timeout),
            EPHEMERAL_VARIABLE: str(self.ephemeral_storage),
            **{k: str(v) for k, v in (self.environment_vars or {}).items()},
            **(extra_env or {}),
        }
        return runner(self.handler, env, payload)

    LambdaFunction._invoke_lambda = invoke  # type: ignore[method-assign]
    try:
        yield
    finally:
        LambdaFunction._invoke_lambda = original  # type: ignore[method-assign]
