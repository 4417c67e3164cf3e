"""Errors by intent (core.errors, core.api.exception_handler), through real requests.

A refusal a service means for the user (DomainError, Django's ValidationError) is a 4xx with
its message; anything else that escapes a view is a bug: a logged 500 with a generic message,
never the internal text, and never a 400 that blames the caller.
"""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ValidationError
from django.urls import path
from rest_framework.test import APIClient
from rest_framework.views import APIView

from core.api import INTERNAL_ERROR
from core.errors import Conflict, NotFound, Refused, error_messages
from jobs.models import Job
from jobs.queue import job_enqueue
from tests.archives.bagtools import make_archivist
from tests.conftest import make_user

SECRET = "internal detail: /srv/atelier/var/secret.db row 42"


class Raises(APIView):
    """A view that raises what the URL names, answered by the project's exception handler."""

    authentication_classes: list = []
    permission_classes: list = []
    RAISE = {
        "refused": lambda: Refused("the study is closed"),
        "not-found": lambda: NotFound("no such run"),
        "conflict": lambda: Conflict("the job has already finished"),
        "validation": lambda: ValidationError({"name": ["This field is required."]}),
        "key-error": lambda: KeyError(SECRET),
        "value-error": lambda: ValueError(SECRET),
        "lookup-error": lambda: LookupError(SECRET),
        "type-error": lambda: TypeError(SECRET),
    }

    def post(self, request, what: str):
        raise self.RAISE[what]()


urlpatterns = [path("raises/<str:what>/", Raises.as_view())]


@pytest.fixture
def api(settings):
    settings.ROOT_URLCONF = __name__
    return APIClient(raise_request_exception=False)


@pytest.mark.parametrize(
    ("what", "status", "body"),
    [
        ("refused", 400, {"detail": "the study is closed"}),
        ("not-found", 404, {"detail": "no such run"}),
        ("conflict", 409, {"detail": "the job has already finished"}),
        ("validation", 400, {"name": ["This field is required."]}),
    ],
)
def test_domain_errors_answer_their_status_and_message(api, what, status, body):
    response = api.post(f"/raises/{what}/")
    assert response.status_code == status
    assert response.json() == body


@pytest.mark.parametrize("what", ["key-error", "value-error", "lookup-error", "type-error"])
def test_an_unexpected_exception_is_a_logged_500_with_a_generic_message(api, caplog, what):
    with caplog.at_level(logging.ERROR, logger="atelier.api"):
        response = api.post(f"/raises/{what}/")
    # Not a 400: the caller did nothing wrong, and the internal text stays in the log.
    assert response.status_code == 500
    assert response.json() == {"detail": INTERNAL_ERROR}
    assert SECRET not in response.content.decode()
    [record] = [r for r in caplog.records if r.name == "atelier.api"]
    assert "POST /raises/" in record.getMessage() and "Raises" in record.getMessage()
    assert record.exc_info and SECRET in str(record.exc_info[1])


@pytest.mark.django_db
def test_real_refusals_keep_their_answers():
    """Services that used to raise ValueError/LookupError now raise domain errors."""
    curator = make_user("cura", "curator", is_staff=True)
    client = APIClient()
    client.force_authenticate(curator)

    # A finished job cannot be cancelled: JobStateError is a Conflict (409).
    job = job_enqueue(kind="jobs.selftest", params={}, user=curator)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    response = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert response.status_code == 409
    assert response.json() == {
        "detail": "job is already succeeded; only queued or running jobs can be cancelled"
    }

    # An unknown bag scope target: a Refused from archives (400, named).
    archivist = make_archivist("arch")
    client.force_authenticate(archivist)
    response = client.post(
        "/api/v1/archives/bags/", {"scope": "collection", "target": "no-such"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "no collection 'no-such'"}


def test_pages_get_the_messages_of_a_refusal_as_lines():
    assert error_messages(Refused("the study is closed")) == ["the study is closed"]
    assert error_messages(ValidationError("no")) == ["no"]
    assert error_messages(ValidationError({"name": ["required"], "__all__": ["stale"]})) == [
        "name: required",
        "stale",
    ]
