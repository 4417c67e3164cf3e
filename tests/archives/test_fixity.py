"""Fixity: a tampered or missing stored file is caught by the job run in a real worker."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError

from archives.fixity import fixity_check
from archives.models import FixityEvent, StoredFile
from archives.services import stored_file_save
from jobs.models import Job
from tests.archives.bagtools import make_archivist
from tests.conftest import make_user, wait_for


def _three_files():
    good = stored_file_save(name="fixity/good.txt", content=b"unchanged", content_type="text/plain")
    tampered = stored_file_save(name="fixity/tampered.txt", content=b"original bytes")
    gone = stored_file_save(name="fixity/gone.txt", content=b"soon deleted")
    return good, tampered, gone


def _damage(tampered: StoredFile, gone: StoredFile) -> None:
    # Change bytes behind the service's back, as a failing disk or a careless hand would.
    with open(default_storage.path(tampered.name), "wb") as handle:
        handle.write(b"silently changed")
    default_storage.delete(gone.name)


@pytest.mark.worker
def test_fixity_job_in_a_real_worker_reports_changed_and_missing_files(start_worker, client):
    good, tampered, gone = _three_files()
    client.force_login(make_archivist("keeper"))

    response = client.post("/api/v1/archives/fixity/")
    assert response.status_code == 202
    start_worker(("default",))
    job = wait_for(
        lambda: Job.objects.filter(pk=response.json()["job"], status="succeeded").first(),
    )
    assert job.result["outcome"] == "success" and job.result["checked"] == 3

    _damage(tampered, gone)
    client.post("/archives/fixity/")  # the button on the staff page
    second = wait_for(lambda: FixityEvent.objects.filter(outcome="failure").first())
    assert second.checked == 3 and second.ok_count == 1
    assert [c["name"] for c in second.changed] == [tampered.name]
    assert second.changed[0]["expected"] == tampered.sha256
    assert [m["name"] for m in second.missing] == [gone.name]
    assert StoredFile.objects.get(pk=good.pk).last_fixity_ok is True
    assert StoredFile.objects.get(pk=tampered.pk).last_fixity_ok is False
    assert StoredFile.objects.get(pk=gone.pk).last_fixity_ok is False
    wait_for(lambda: Job.objects.filter(kind="archives.fixity", status="succeeded").count() == 2)

    page = client.get("/archives/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "failure" in text
    assert tampered.name in text and gone.name in text
    api = client.get("/api/v1/archives/fixity/").json()
    assert api["failing_files"] == 2
    assert {f["name"] for f in api["failing"]} == {tampered.name, gone.name}


@pytest.mark.django_db
def test_fixity_command_for_cron(capsys):
    _good, tampered, gone = _three_files()
    call_command("check_fixity", "--now")
    assert FixityEvent.objects.get().outcome == "success"
    _damage(tampered, gone)
    with pytest.raises(CommandError):
        call_command("check_fixity", "--now")
    out = capsys.readouterr().out
    assert f"CHANGED {tampered.name}" in out and f"MISSING {gone.name}" in out
    event = fixity_check()
    assert (event.changed_count, event.missing_count) == (1, 1)


@pytest.mark.django_db
def test_fixity_pages_and_api_are_for_archivists(client):
    client.force_login(make_user("visitor"))
    assert client.get("/archives/").status_code == 403
    assert client.post("/api/v1/archives/fixity/").status_code == 403
    client.logout()
    assert client.get("/archives/").status_code == 302
