"""Request throttles and the client address that throttles and the login lock-out share.

The rates live in ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]`` (settings, from the environment);
the counters live in the shared cache (Redis), so every gunicorn worker counts the same requests.
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest
from django.shortcuts import render
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


class _ExpensiveScope:
    throttle_scope = "expensive"


def throttle_expensive_posts(view):
    """The API's ``expensive`` budget for a page that queues GPU work: its POSTs count against
    the same per-user counter as the API's, so the curator forms are no way around it."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if request.method not in SAFE_METHODS:
            throttle = ScopedRateThrottle()
            if not throttle.allow_request(request, _ExpensiveScope()):
                wait = int(throttle.wait() or 1)
                response = render(
                    request, "throttled.html", {"wait_seconds": max(wait, 1)}, status=429
                )
                response["Retry-After"] = str(max(wait, 1))
                return response
        return view(request, *args, **kwargs)

    return wrapped
