"""How the API says no: 400 with ``{"message", "errors"}``, one readable line per problem."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from mixtune.api.models import ErrorBody


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


def bad_request(errors: list[dict[str, Any]]) -> Response:
    lines = [describe(e) for e in errors]
    body = ErrorBody(message="bad request: " + "; ".join(lines[:5]), errors=lines)
    return Response(status_code=400, content_type=content_types.APPLICATION_JSON, body=body.model_dump_json())
