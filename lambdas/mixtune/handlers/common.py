"""What every handler shares: Powertools observability, settings, the repository, errors.

Handlers stay thin: parse the event into a pydantic model, call one function, return a
JSON-able dict. Heavy modules (boto3 clients, data preparation, mixing) are imported where
they are used so that each handler's module imports fast on a cold start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

from mixtune.errors import TransientError

SERVICE = "mixtune"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=SERVICE, service=SERVICE)

Handler = Callable[[Any, Any], Any]
F = TypeVar("F", bound=Handler)

# AWS error codes worth a retry by the state machine (raised again as TransientError).
_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "SlowDown",
    }
)


@functools.cache
def get_tracer() -> Tracer:
    """The X-Ray tracer, built on first use: building it imports the X-Ray SDK (~200 ms),
    which would otherwise double every handler's cold import."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=SERVICE)


def traced(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`Tracer.capture_method`, applied lazily (see :func:`get_tracer`)."""

    @functools.cache
    def decorated() -> Callable[..., Any]:
        return get_tracer().capture_method(capture_response=False)(fn)

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return decorated()(*args, **kwargs)

    return call


def lambda_entry(fn: F) -> F:
    """Wrap a handler with the Powertools logger context, tracer and metrics flush."""

    @functools.cache
    def decorated() -> Handler:
        wrapped = logger.inject_lambda_context(clear_state=True)(fn)
        wrapped = get_tracer().capture_lambda_handler(capture_response=False)(wrapped)
        return metrics.log_metrics(raise_on_empty_metrics=False)(wrapped)

    @functools.wraps(fn)
    def handler(event: Any, context: Any) -> Any:
        return decorated()(event, context)

    return handler  # type: ignore[return-value]


def as_transient(exc: BaseException) -> BaseException:
    """Throttling, 5xx and connection failures from AWS become TransientError (retried by ASL)."""
    from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(f"{code or status}: {exc}")
    if isinstance(exc, ConnectionError | EndpointConnectionError):
        return TransientError(str(exc))
    return exc


def repository() -> Any:
    from mixtune.runs import RunsRepository

    return RunsRepository.from_settings()
