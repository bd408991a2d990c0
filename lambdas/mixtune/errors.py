"""Errors the pipeline's handlers raise on purpose.

The Lambda runtime reports an exception's class name as ``errorType``; the state machine
matches ``Retry`` and ``Catch`` on those names, so renaming a class here means changing
``infra/statemachine/pipeline.asl.json`` too.
"""

from __future__ import annotations


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
