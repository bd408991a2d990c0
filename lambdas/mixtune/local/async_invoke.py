"""Asynchronous Lambda invocations as Lambda runs them, for the local cloud.

Lambda queues an asynchronous invocation (``InvocationType=Event``, an S3 notification, an
EventBridge target), and when the function returns an error it retries twice (by default;
``MaximumRetryAttempts`` of the function's event invoke config, 0-2), waiting about one
minute and then two; when every attempt failed it sends an invocation record to the
on-failure destination (AWS Lambda Developer Guide, "Asynchronous invocation": error
handling, retries and destinations). moto runs such an invocation once, inline, and drops
its error. Here it runs in the background with the same retries (shorter waits) and the
same record to the same destination.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("mixtune.local")

DEFAULT_RETRIES = 2
# Lambda waits ~1 min, then ~2 min; the local cloud keeps the order of things, not the minutes.
RETRY_DELAYS_S: tuple[float, ...] = (1.0, 2.0)


def event_invoke_config(function: Any) -> dict[str, Any]:
    """The function's ``PutFunctionEventInvokeConfig`` settings (moto keeps them), or {}."""
    configs = getattr(function, "event_invoke_config", None) or []
    return dict(configs[0].config) if configs else {}


def invocation_record(
    function: Any, payload: Any, attempts: int, response: Any, condition: str = "RetriesExhausted"
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": f"local-{time.time_ns():x}",
            "functionArn": f"{function.function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "requestPayload": payload,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": response,
    }


def invoke_async(function: Any, payload: Any, delays: Sequence[float] | None = None) -> bool:
    """Run one asynchronous invocation to its end (call it on a background thread): the
    attempts, then the on-failure destination. Returns whether an attempt succeeded."""
    delays = RETRY_DELAYS_S if delays is None else delays
    config = event_invoke_config(function)
    retries = int(config.get("MaximumRetryAttempts", DEFAULT_RETRIES))
    event = payload if isinstance(payload, str | bytes) else json.dumps(payload)
    response: Any = None
    for attempt in range(1 + retries):
        result, errored, _logs = function._invoke_lambda(event=event)
        if not errored:
            return True
        try:
            response = json.loads(result)
        except (TypeError, ValueError):
            response = {"errorMessage": str(result)[:2000]}
        log.warning(
            "async invoke of %s failed (attempt %d of %d)", function.function_name, attempt + 1, retries + 1
        )
        if attempt < retries:
            time.sleep(delays[min(attempt, len(delays) - 1)] if delays else 0)
    destination = config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    if destination:
        record = invocation_record(function, json.loads(event), retries + 1, response)
        send_to_destination(destination, record, function.account_id, function.region)
    return False


def send_to_destination(arn: str, record: dict[str, Any], account: str, region: str) -> None:
    """Deliver an invocation record to a Lambda function destination (itself asynchronously)."""
    from moto.awslambda.utils import get_backend

    if arn.split(":")[2] != "lambda":
        log.error("on-failure destination %s: only Lambda destinations are delivered locally", arn)
        return
    destination = get_backend(account, region).get_function(arn)
    invoke_async(destination, record)


def in_background(function: Any, payload: Any) -> threading.Thread:
    """Start :func:`invoke_async` on a daemon thread (what ``InvocationType=Event`` gets)."""

    def run() -> None:
        try:
            invoke_async(function, payload)
        except Exception:  # nothing waits for an async invocation: log it
            log.exception("async invoke of %s", function.function_name)

    thread = threading.Thread(target=run, name=f"invoke-async {function.function_name}", daemon=True)
    thread.start()
    return thread
