"""The API's OpenAPI document, saying what the API does: Powertools documents a 422
``HTTPValidationError`` for invalid requests, while mixtune answers 400 ``{message, errors}``
(:mod:`mixtune.api.errors`) for every bad request and 404 the same way for an unknown run."""

from __future__ import annotations

import json
from typing import Any

from mixtune.api.models import ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_POWERTOOLS_ERRORS = ("HTTPValidationError", "ValidationError")


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def openapi_document(generated: str) -> dict[str, Any]:
    """Powertools' generated schema (JSON text) with the error responses mixtune really sends."""
    document = json.loads(generated)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _POWERTOOLS_ERRORS:
        schemas.pop(name, None)
    schemas["ErrorBody"] = ErrorBody.model_json_schema()
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            responses["400"] = error_response(responses.get("400", {}).get("description", "bad request"))
            if "404" in responses:
                responses["404"] = error_response(responses["404"].get("description", "not found"))
    return document
