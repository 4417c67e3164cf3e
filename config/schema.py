"""drf-spectacular hooks: the error answers every operation can give, documented once.

The views document their successes and their own refusals (412 of a stale If-Match, 409 of a
finished run...). Every operation can also be refused by permissions (403), throttled (429),
given a bad parameter or body (400) or pointed at a record that is not there, or not visible
to the caller (404); ``core.api.exception_handler`` and DRF answer those with the bodies
below. This hook adds them where the view did not, so clients (and the schemathesis test in
tests/archives/test_openapi_conformance.py) see every status the service really sends.
"""

from __future__ import annotations

from typing import Any

# The component of core.api.ErrorSerializer, for operations whose views do not name it.
ERROR = {
    "type": "object",
    "description": "An error with a message for people.",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
VALIDATION_ERROR = {
    "description": "What was wrong: messages by field name (nested for nested fields, by "
    "position for lists), ``detail`` or ``non_field_errors`` for the request as a whole, or "
    "a plain list of messages.",
    "oneOf": [
        {"type": "object", "additionalProperties": {}},
        {"type": "array", "items": {"type": "string"}},
    ],
}

STANDARD = {
    "400": ("ValidationError", "Invalid parameters or body; nothing was changed."),
    "403": (
        "Error",
        "Not allowed: not signed in, or not a role that may do this (curator, archivist, "
        "assigned expert).",
    ),
    "404": (
        "Error",
        "No such record, or one the caller may not see (answered alike), or a page past the last.",
    ),
    "429": ("Error", "Throttled; Retry-After says when to try again."),
}

METHODS = ("get", "post", "put", "patch", "delete")


def _error_content(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _statuses(operation: dict[str, Any]) -> list[str]:
    parameters = operation.get("parameters", [])
    statuses = ["403", "429"]
    if parameters or "requestBody" in operation:
        statuses.append("400")
    if any(p.get("in") == "path" or p.get("name") == "page" for p in parameters):
        statuses.append("404")
    return statuses


def add_error_responses(result: dict[str, Any], generator, request, public) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: the standard 400/403/404/429 answers on every operation
    (kept where a view documents its own)."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationError", VALIDATION_ERROR)
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status in _statuses(operation):
                name, description = STANDARD[status]
                documented = responses.setdefault(status, {"description": description})
                documented.setdefault("content", _error_content(name))
            if "429" in responses:
                responses["429"].setdefault(
                    "headers",
                    {
                        "Retry-After": {
                            "schema": {"type": "integer"},
                            "description": "Seconds to wait.",
                        }
                    },
                )
    return result
