"""Powertools observability for every Lambda: one logger, one metrics sink, a lazy tracer,
and :func:`lambda_entry`, the wrapper every handler wears.

Logs are structured JSON and never include dataset text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics

from mixtune.functions import function
from mixtune.settings import require_settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "mixtune"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=SERVICE, service=SERVICE)

Handler = Callable[[Any, Any], Any]
F = TypeVar("F", bound=Handler)


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


def lambda_entry(name: str) -> Callable[[F], F]:
    """Wrap the handler of function ``name`` (a :data:`mixtune.functions.FUNCTIONS` entry) with
    the Powertools logger context, tracer and metrics flush.

    Inside Lambda (or the local cloud's runner), the settings the function needs must be set:
    a missing one fails the first invocation with its variable's name, instead of (say)
    silently publishing nothing.
    """
    needs = function(name).needs

    def wrap(fn: F) -> F:
        @functools.cache
        def decorated() -> Handler:
            wrapped = logger.inject_lambda_context(clear_state=True)(fn)
            wrapped = get_tracer().capture_lambda_handler(capture_response=False)(wrapped)
            return metrics.log_metrics(raise_on_empty_metrics=False)(wrapped)

        @functools.wraps(fn)
        def handler(event: Any, context: Any) -> Any:
            require_settings(name, needs)
            return decorated()(event, context)

        return handler  # type: ignore[return-value]

    return wrap
