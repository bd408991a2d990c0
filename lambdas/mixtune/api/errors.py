"""How the API says no: 400 (or 404) with ``{"message", "errors"}``, one readable line per problem."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from mixtune.api.models import ErrorBody

# JSON nested deeper than this is refused before anything parses it (Python's parser would
# recurse once per level and, thousands deep, fail with RecursionError).
MAX_BODY_DEPTH = 64


def describe(error: dict[str, Any]) -> str:
    """One pydantic validation error as a line a person can act on."""
    loc = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON"
    if kind == "extra_forbidden":
        return f"unknown field {loc!r}"
    if kind == "missing":
        return f"missing field {loc!r}"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{loc}: {message}" if loc else message


def error_response(status: int, lines: list[str], title: str = "bad request") -> Response:
    body = ErrorBody(message=f"{title}: " + "; ".join(lines[:5]), errors=lines)
    return Response(
        status_code=status, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json()
    )


def bad_request(errors: list[dict[str, Any]]) -> Response:
    return error_response(400, [describe(e) for e in errors])


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def unreadable_body(event: dict[str, Any]) -> str | None:
    """Why a request body cannot be read as JSON text (not UTF-8, nested too deep), else None."""
    body = event.get("body")
    if not body:
        return None
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return "the request body is not valid base64"
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "the request body is not UTF-8 text"
    if json_depth(body) > MAX_BODY_DEPTH:
        return f"the request body nests deeper than {MAX_BODY_DEPTH} levels"
    return None


def refusal(reason: str) -> dict[str, Any]:
    """The proxy reply (API Gateway's format) of a request refused before routing."""
    body = ErrorBody(message=f"bad request: {reason}", errors=[reason])
    return {
        "statusCode": 400,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "body": body.model_dump_json(),
        "isBase64Encoded": False,
    }


def register_error_handlers(app: Any) -> None:
    """Every refusal of the resolver ``app`` as ``{message, errors}``: invalid requests and
    run configs 400, unknown runs 404."""
    from aws_lambda_powertools.event_handler.exceptions import BadRequestError, NotFoundError
    from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

    from mixtune.errors import RunConfigError

    app.exception_handler(RequestValidationError)(lambda exc: bad_request(list(exc.errors())))
    app.exception_handler(RunConfigError)(lambda exc: error_response(400, exc.problems))
    app.exception_handler(BadRequestError)(lambda exc: error_response(400, [exc.msg]))
    app.exception_handler(NotFoundError)(lambda exc: error_response(404, [exc.msg], "not found"))
