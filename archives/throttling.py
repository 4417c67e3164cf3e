"""Request throttles and the client address that throttles and the login lock-out share.

The rates live in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (settings, from the environment);
the counters live in the shared cache (Redis), so every gunicorn worker counts the same requests.
"""

from __future__ import annotations

from django.http import HttpRequest
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle, ScopedRateThrottle


class ExpensiveWriteThrottle(ScopedRateThrottle):
    """``throttle_scope`` limits only the writes of a view (POST: queue GPU work).

    The same viewsets list and poll their runs and requests, which the user rate covers; only
    creating one starts hours of GPU time.
    """

    def allow_request(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


def client_ip(request: HttpRequest) -> str:
    """The client's address as DRF's throttles see it: REMOTE_ADDR, or the address the trusted
    proxies (``NUM_PROXIES``) put in X-Forwarded-For. Used by django-axes too, so a lock-out
    behind nginx is per visitor, not per proxy."""
    return BaseThrottle().get_ident(request)
