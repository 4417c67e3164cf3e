"""Every API endpoint answers bad input with a clean 4xx JSON error, never a 500.

Walks all URL patterns under /api/v1/, fills path parameters with ids that don't exist, and
sends each method with a malformed JSON body, as a user who may write everything.
"""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from tests.conftest import make_user

UNKNOWN_UUID = "00000000-0000-4000-8000-000000000000"


def _concrete(route: str) -> str | None:
    if "format" in route:
        return None  # DRF's .json/.api suffix variants: same views
    route = re.sub(
        r"<(?:(\w+):)?(\w+)>",
        lambda m: (
            UNKNOWN_UUID
            if m.group(1) == "uuid"
            else "999999"
            if m.group(1) == "int"
            else "no-such-thing"
        ),
        route,
    )
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "999999", route)
    return "/" + route.replace("^", "").replace("$", "").replace("\\", "")


def api_paths() -> list[str]:
    def walk(patterns, prefix: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                yield prefix + str(pattern.pattern)

    paths = {_concrete(route) for route in walk(get_resolver().url_patterns, "")}
    return sorted(p for p in paths if p and p.startswith("/api/v1/"))


@pytest.fixture
def superuser(db):
    return make_user("root", "curator", "expert", is_staff=True, is_superuser=True)


def test_the_walk_finds_the_api():
    assert f"/api/v1/jobs/{'999999'}/cancel/" in api_paths() or any(
        p.startswith("/api/v1/jobs/") and p.endswith("/cancel/") for p in api_paths()
    )


@pytest.mark.parametrize("path", api_paths())
def test_bad_input_never_gets_a_500(superuser, redis_conn, path):
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(superuser)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        response = client.generic(method, path, '{"broken": ', "application/json")
        where = f"{method} {path} -> {response.status_code}"
        assert response.status_code < 500, where
        if response.status_code >= 400:
            assert response["Content-Type"].startswith("application/json"), where
