"""The site shell: base page, login, languages (Uyghur is right-to-left), health, dashboards."""

from __future__ import annotations

import signal

import pytest
from django.test import Client

from tests.conftest import make_user, wait_for


def test_login_page_renders_on_the_base_template_with_labelled_fields(client, db):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en" dir="ltr">' in html
    assert '<main id="main"' in html
    assert 'href="#main"' in html  # skip link
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert "/static/site/site.css" in html
    assert "https://" not in html.split("<body")[0]  # no external assets in <head>


def test_logging_in_and_out(client, db):
    make_user("amina", "curator")
    response = client.post(
        "/accounts/login/", {"username": "amina", "password": "pw-amina", "next": "/healthz"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/healthz"
    page = client.get("/accounts/login/").content.decode()
    assert "amina" in page and 'action="/accounts/logout/"' in page
    assert client.post("/accounts/logout/").status_code == 200
    wrong = client.post("/accounts/login/", {"username": "amina", "password": "nope"})
    assert wrong.status_code == 200
    assert 'role="alert"' in wrong.content.decode()


@pytest.mark.parametrize("language, direction", [("en", "ltr"), ("zh", "ltr"), ("ug", "rtl")])
def test_page_language_and_direction_follow_the_visitor(db, language, direction):
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    html = client.get("/accounts/login/").content.decode()
    assert f'<html lang="{language}" dir="{direction}">' in html


def test_the_language_switch_remembers_the_choice(client, db):
    response = client.post("/i18n/setlang/", {"language": "ug", "next": "/accounts/login/"})
    assert response.status_code == 302
    html = client.get("/accounts/login/").content.decode()
    assert '<html lang="ug" dir="rtl">' in html


def test_the_rq_dashboard_is_for_staff_only(client, db):
    assert client.get("/admin/rq/").status_code == 302  # to the admin login
    client.force_login(make_user("cur", "curator"))
    assert client.get("/admin/rq/").status_code == 302
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    response = client.get("/admin/rq/")
    assert response.status_code == 200
    assert b"default" in response.content and b"gpu" in response.content


def test_unknown_pages_are_404_html_and_unknown_api_paths_404_json(client, db):
    page = client.get("/no/such/page/")
    assert page.status_code == 404
    api = client.get("/api/v1/nothing-here/")
    assert api.status_code == 404
    assert api.json() == {"detail": "Not found."}


def test_api_docs_and_schema_are_served_without_a_cdn(client, db):
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "cdn" not in html.lower()
    assert "/static/drf_spectacular_sidecar/" in html
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/jobs/{id}/" in schema.json()["paths"]


def test_healthz_reports_database_and_redis(client, db, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "database": "ok",
        "redis": "ok",
        "workers": {"default": 0, "gpu": 0},
        "status": "ok",
    }


@pytest.mark.worker
def test_healthz_counts_live_workers_per_queue(start_worker):
    client = Client()

    def workers():
        return client.get("/healthz").json()["workers"]

    gpu = start_worker(("gpu",))
    start_worker(("default", "gpu"))
    wait_for(lambda: workers() == {"default": 1, "gpu": 2})
    gpu.process.send_signal(signal.SIGKILL)
    gpu.process.wait()
    # A killed worker stops counting at once, though RQ's own record of it lingers.
    assert workers() == {"default": 1, "gpu": 1}


def test_staff_see_jobs_in_the_admin_and_can_cancel_them(client, db, redis_conn):
    from jobs.models import Job
    from jobs.queue import job_enqueue

    job = job_enqueue(kind="jobs.selftest", params={"steps": 1})
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    listing = client.get("/admin/jobs/job/")
    assert listing.status_code == 200
    assert b"jobs.selftest" in listing.content
    assert client.get(f"/admin/jobs/job/{job.pk}/change/").status_code == 200
    response = client.post(
        "/admin/jobs/job/", {"action": "cancel_jobs", "_selected_action": [str(job.pk)]}
    )
    assert response.status_code == 302
    assert Job.objects.get(pk=job.pk).status == Job.Status.CANCELLED
    assert client.get("/admin/archives/storedfile/").status_code == 200
