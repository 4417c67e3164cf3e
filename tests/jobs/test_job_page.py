"""/jobs/<id>/: the page that follows a job, for those the jobs API shows it to."""

from __future__ import annotations

import pytest
from django.test import Client

from jobs.models import Job
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_follows_a_job_until_it_ends_and_only_for_who_may_see_it():
    owner = make_user("owner-expert", "expert")
    job = Job.objects.create(kind="jobs.selftest", timeout=60, created_by=owner, message="step 1")
    page = login(owner).get(f"/jobs/{job.pk}/?next=/evaluation/")
    text = page.content.decode()
    assert page.status_code == 200 and "jobs.selftest" in text and "step 1" in text
    assert f'hx-get="/jobs/{job.pk}/status/?next=/evaluation/"' in text
    assert "vendor/htmx/htmx.min.js" in text
    # Someone else's job is not found; anonymous users are sent to log in.
    assert login(make_user("another", "expert")).get(f"/jobs/{job.pk}/").status_code == 404
    assert Client().get(f"/jobs/{job.pk}/").status_code == 302
    # Finished: no more polling, how it ended, a link back (never to another site).
    Job.objects.filter(pk=job.pk).update(status="failed", error="disk on fire\n\nTraceback ...")
    fragment = login(owner).get(f"/jobs/{job.pk}/status/?next=/evaluation/").content.decode()
    assert "hx-get" not in fragment and "disk on fire" in fragment
    assert "Traceback" not in fragment and 'href="/evaluation/"' in fragment
    elsewhere = login(owner).get(f"/jobs/{job.pk}/status/?next=https://evil.example/")
    assert "evil.example" not in elsewhere.content.decode()
