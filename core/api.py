"""API plumbing shared by every app: JSON errors for everything that goes wrong."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


class ErrorSerializer(serializers.Serializer):
    """A refusal with a message for people (403, 404, 409, 429...)."""

    # Component "Error"; archives/schema.py adds the standard refusals to every operation.

    detail = serializers.CharField()


def exception_handler(exc, context):
    """DRF's handler, plus Django ValidationError → 400 with the messages."""
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        exc = exceptions.ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if response is None and isinstance(exc, LookupError | ValueError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return response
