"""Errors by intent: what a service raises when it refuses something a person asked for.

A ``DomainError`` carries a message written for the person who made the request; the API
(``core.api.exception_handler``) answers it with its ``status_code`` and that message, and the
pages show it. Django's ``ValidationError`` (from ``full_clean()``) is a refusal too (400 with
the field messages). Anything else that escapes a view (a ValueError, KeyError or TypeError
from code) is a bug: a logged 500 with a generic message, never the internal text.

    raise NotFound(f"no training run {pk}")       # 404
    raise Refused("the study is closed")          # 400
    raise Conflict("the job has already finished")  # 409
"""

from __future__ import annotations

from django.core.exceptions import ValidationError


class DomainError(Exception):
    """A refusal meant for the user; ``str(error)`` is shown to them as is."""

    status_code = 400
    default_code = "refused"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class Refused(DomainError):
    """The request cannot be done as asked (bad value, wrong state): 400."""


class NotFound(DomainError):
    """What the request names does not exist (or is hidden from this user): 404."""

    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    """The request clashes with the current state of the record: 409."""

    status_code = 409
    default_code = "conflict"


def error_messages(exc: DomainError | ValidationError) -> list[str]:
    """The messages of a refusal as lines for a page or a command ("field: message")."""
    if isinstance(exc, ValidationError):
        if hasattr(exc, "error_dict"):
            return [
                m if field == "__all__" else f"{field}: {m}"
                for field, ms in exc.message_dict.items()
                for m in ms
            ]
        return list(exc.messages)
    return [str(exc)]
