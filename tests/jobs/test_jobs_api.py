"""GET /api/v1/jobs/<id>/ and its cancel action: who sees what, and clean 4xx errors."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from jobs.queue import job_enqueue
from tests.conftest import make_user


@pytest.fixture
def client():
    return APIClient()


@pytest.fixture
def owner(db):
    return make_user("owner", "expert")


@pytest.fixture
def job(owner, redis_conn):
    return job_enqueue(kind="jobs.selftest", params={"steps": 1}, user=owner)


def test_the_owner_sees_status_and_progress(client, owner, job):
    client.force_authenticate(owner)
    body = client.get(f"/api/v1/jobs/{job.pk}/").json()
    assert body["id"] == str(job.pk)
    assert body["kind"] == "jobs.selftest"
    assert body["status"] == "queued"
    assert body["progress"] == 0.0
    assert body["queue"] == "default"
    listed = client.get("/api/v1/jobs/", {"status": "queued"}).json()
    assert [row["id"] for row in listed["results"]] == [str(job.pk)]


def test_anonymous_users_get_a_json_403(client, job):
    response = client.get(f"/api/v1/jobs/{job.pk}/")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403


def test_other_users_jobs_are_hidden_but_curators_see_all(client, job):
    client.force_authenticate(make_user("someone", "expert"))
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
    assert client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
    client.force_authenticate(make_user("cur", "curator"))
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200


@pytest.mark.parametrize(
    "method, path, expected",
    [
        ("get", "/api/v1/jobs/{unknown}/", 404),
        ("get", "/api/v1/jobs/not-a-uuid/", 404),
        ("post", "/api/v1/jobs/{unknown}/cancel/", 404),
        ("post", "/api/v1/jobs/not-a-uuid/cancel/", 404),
        ("get", "/api/v1/jobs/{job}/cancel/", 405),
        ("delete", "/api/v1/jobs/{job}/", 405),
        ("put", "/api/v1/jobs/{job}/", 405),
        ("post", "/api/v1/jobs/", 405),
        ("get", "/api/v1/no-such-thing/", 404),
    ],
)
def test_bad_requests_get_clean_json_errors(client, owner, job, method, path, expected):
    client.force_authenticate(owner)
    url = path.format(unknown=uuid.uuid4(), job=job.pk)
    response = client.generic(method.upper(), url, "{not json", "application/json")
    assert response.status_code == expected
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


def test_cancel_by_the_owner_and_then_a_409(client, owner, job):
    client.force_authenticate(owner)
    first = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled"
    second = client.post(f"/api/v1/jobs/{job.pk}/cancel/")
    assert second.status_code == 409
    assert second.json()["detail"].startswith("job is already cancelled")
