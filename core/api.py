"""API plumbing shared by every app: JSON errors, by intent (``core.errors``).

* ``DomainError`` (``Refused`` 400, ``NotFound`` 404, ``Conflict`` 409): its status and message;
* Django's ``ValidationError`` (``full_clean()``): 400 with the field messages, as DRF's own;
* DRF's exceptions (validation, 403, 404, 429...): DRF's answer;
* anything else (a ValueError, KeyError or TypeError from code) is a bug: logged with its
  traceback and answered 500 with a generic message, never with the internal text.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from core.errors import DomainError

logger = logging.getLogger("atelier.api")
INTERNAL_ERROR = "Something went wrong on our side; it was logged. Please try again later."


class ErrorSerializer(serializers.Serializer):
    """A refusal with a message for people (403, 404, 409, 429...)."""

    # Component "Error"; config/schema.py adds the standard refusals to every operation.

    detail = serializers.CharField()


def drf_validation_error(exc: DjangoValidationError) -> exceptions.ValidationError:
    """Django's ValidationError as DRF's: field -> messages, or {"detail": [messages]}."""
    detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    return exceptions.ValidationError(detail)


def exception_handler(exc, context):
    """DRF's handler, plus domain errors and Django ValidationError; the rest is a logged 500."""
    if isinstance(exc, DomainError):
        set_rollback()
        return Response({"detail": exc.message}, status=exc.status_code)
    if isinstance(exc, DjangoValidationError):
        exc = drf_validation_error(exc)
    response = drf_exception_handler(exc, context)
    if response is not None:
        return response
    request = context.get("request")
    view = context.get("view")
    logger.error(
        "unexpected %s in %s %s (%s)",
        type(exc).__name__,
        getattr(request, "method", "?"),
        getattr(request, "path", "?"),
        type(view).__name__ if view is not None else "no view",
        exc_info=(type(exc), exc, exc.__traceback__),
    )
    set_rollback()
    return Response({"detail": INTERNAL_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
