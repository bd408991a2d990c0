"""Errors the pipeline's handlers raise on purpose.

The Lambda runtime reports an exception's class name as ``errorType``; the state machine
matches ``Retry`` and ``Catch`` on those names, so renaming a class here means changing
``infra/statemachine/pipeline.asl.json`` too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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


class MixtuneError(Exception):
    """Base class of the service's own errors."""


class TransientError(MixtuneError):
    """A failure worth retrying (throttling, a dropped connection); the ASL retries it."""


class JobFailedError(MixtuneError):
    """A training or evaluation job ended FAILED or CANCELLED; the message carries its reason."""


class PollLimitExceeded(MixtuneError):
    """A job was still running after the poll loop's maximum number of polls."""


class RunNotFound(MixtuneError):
    """No run item with that id."""


class RunAlreadyExists(MixtuneError):
    """A run item with that id exists already (create is conditional on absence)."""


class IllegalTransition(MixtuneError):
    """A status change the run's state machine does not allow (SUCCEEDED -> RUNNING, say)."""


class RunConfigError(MixtuneError, ValueError):
    """A run's config breaks a rule (a field, a bound, a limit); ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("invalid run config: " + "; ".join(self.problems))


class CostLimitExceeded(RunConfigError):
    """A run asks for more than the deployment allows (instance type, nodes, model, backend)."""


class ConfigurationError(MixtuneError):
    """A deployed function lacks a setting it needs (the message names the variable)."""


def as_transient(exc: BaseException) -> BaseException:
    """Throttling, 5xx and connection failures from AWS become TransientError (retried by ASL);
    any other exception is returned unchanged."""
    from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _TRANSIENT_CODES or status >= 500:
            return TransientError(f"{code or status}: {exc}")
    if isinstance(exc, ConnectionError | EndpointConnectionError):
        return TransientError(str(exc))
    return exc


@contextmanager
def retryable_aws_errors() -> Iterator[None]:
    """Raise AWS throttling, 5xx and connection failures inside the block as TransientError."""
    try:
        yield
    except Exception as exc:
        converted = as_transient(exc)
        if converted is exc:
            raise
        raise converted from exc
