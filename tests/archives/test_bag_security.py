"""Bag work is the archivist's; hostile bags are refused before they write anything.

Through the API and pages with the real database: who may import, export, validate and run
fixity; bags that smuggle accounts or foreign records in ``atelier.json``; archives that
declare too much (zip bombs) or lie about their sizes; temporary folders left behind.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from archives.bagit_export import bag_export_file
from archives.models import BagExport, BagImport, Job
from heritage.models import Collection
from tests.archives.bagtools import (
    flush_catalogue,
    make_archivist,
    small_catalogue,
)
from tests.conftest import make_user

VALIDATE = "/api/v1/archives/bags/validate/"
IMPORT = "/api/v1/archives/bags/import/"
EXPORT = "/api/v1/archives/bags/"
FIXITY = "/api/v1/archives/fixity/"


def upload_of(path: Path) -> io.BytesIO:
    upload = io.BytesIO(path.read_bytes())
    upload.name = path.name
    return upload


def exported(tmp_path: Path, archive_format: str = "tar") -> Path:
    """A real Atelier bag of a small collection, then the catalogue is emptied again."""
    small_catalogue()
    target = tmp_path / f"collection.{archive_format}"
    bag_export_file(
        scope="collection", target_id="atlas", archive_format=archive_format, target=target
    )
    flush_catalogue()
    return target


# --- roles --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_curator_who_is_staff_may_not_import_export_validate_or_check_fixity(client, tmp_path):
    bag = exported(tmp_path)
    small_catalogue()
    client.force_login(make_user("cur", "curator", is_staff=True))

    assert client.post(IMPORT, {"file": upload_of(bag)}).status_code == 403
    assert client.post(VALIDATE, {"file": upload_of(bag)}).status_code == 403
    assert client.post(EXPORT, {"scope": "collection", "target": "atlas"}).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert client.post(FIXITY).status_code == 403
    assert client.get(FIXITY).status_code == 403
    for page in ("/archives/", "/archives/validate/", "/archives/import/"):
        assert client.get(page).status_code == 403, page
    assert client.post("/archives/fixity/").status_code == 403
    assert (
        client.post("/archives/exports/", {"scope": "collection", "target": "atlas"}).status_code
        == 403
    )
    assert not BagImport.objects.exists() and not BagExport.objects.exists()
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_an_expert_may_not_validate_a_bag(client, tmp_path):
    bag = exported(tmp_path)
    client.force_login(make_user("ex", "expert"))
    response = client.post(VALIDATE, {"file": upload_of(bag)})
    assert response.status_code == 403
    assert "archivist" in response.json()["detail"]
    assert client.post("/archives/validate/", {"file": upload_of(bag)}).status_code == 403


@pytest.mark.django_db
def test_an_archivist_may_validate_import_export_and_check_fixity(client, tmp_path):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))

    assert client.post(VALIDATE, {"file": upload_of(bag)}).json()["valid"] is True
    response = client.post(IMPORT, {"file": upload_of(bag)})
    assert response.status_code == 201, response.json()
    assert Collection.objects.filter(slug="atlas").exists()
    response = client.post(EXPORT, {"scope": "collection", "target": "atlas", "format": "zip"})
    assert response.status_code == 202, response.json()
    assert BagExport.objects.get().job.kind == "archives.bag_export"
    assert client.post(FIXITY).status_code == 202
    assert client.get(FIXITY).status_code == 200
    for page in ("/archives/", "/archives/validate/", "/archives/import/"):
        assert client.get(page).status_code == 200, page
    # The archivist sees the bag and fixity jobs in the jobs API, cron's too, though not staff.
    Job.objects.create(kind="archives.fixity", status="succeeded", timeout=60)  # cron's
    Job.objects.create(kind="generation.train", timeout=60)
    kinds = {job["kind"] for job in client.get("/api/v1/jobs/").json()["results"]}
    assert kinds == {"archives.bag_export", "archives.fixity"}
    assert len(client.get("/api/v1/jobs/").json()["results"]) == 3
