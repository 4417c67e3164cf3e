"""Bag work is the archivist's; hostile bags are refused before they write anything.

Through the API and pages with the real database: who may import, export, validate and run
fixity; bags that smuggle accounts or foreign records in ``atelier.json``; archives that
declare too much (zip bombs) or lie about their sizes; temporary folders left behind.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import bagit
import pytest
from django.apps import apps
from django.contrib.auth.models import User

from archives.bagit_export import (
    FILE_LABEL,
    NOT_EXPORTED,
    SCOPES,
    bag_export_file,
    user_label,
)
from archives.bagit_import import IMPORTABLE, NEVER_IMPORTED_APPS
from archives.bagit_validate import bag_validate
from archives.models import BagExport, BagImport, Job, StoredFile
from heritage.models import Collection, SemioticAnnotation
from tests.archives.bagtools import (
    flush_catalogue,
    make_archivist,
    small_catalogue,
    storage_names,
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


# --- what a bag may hold ------------------------------------------------------------------------


def rebagged(archive: Path, tmp_path: Path, change) -> Path:
    """A valid bag again after ``change(document)`` edited data/atelier.json (manifests redone)."""
    folder = tmp_path / f"edit-{len(list(tmp_path.iterdir()))}"
    with tarfile.open(archive) as packed:
        packed.extractall(folder, filter="data")
    (root,) = list(folder.iterdir())
    records = root / "data" / "atelier.json"
    document = json.loads(records.read_text())
    change(document)
    records.write_text(json.dumps(document))
    bagit.Bag(str(root)).save(manifests=True)
    target = tmp_path / f"{folder.name}.tar"
    with tarfile.open(target, "w") as packed:
        packed.add(root, arcname=root.name)
    assert bag_validate(target).valid
    return target


def every_row_count() -> dict[str, int]:
    return {
        model._meta.label: model._default_manager.count()
        for model in apps.get_models()
        if model._meta.managed and not model._meta.proxy
    }


def refused_import(client, bag: Path) -> str:
    """POST the bag to the import API: it must be refused and write no row and no file."""
    rows, files = every_row_count(), storage_names()
    response = client.post(IMPORT, {"file": upload_of(bag)})
    assert response.status_code == 400, response.json()
    assert response.json()["imported"] is False
    assert every_row_count() == rows
    assert storage_names() == files
    return "\n".join(response.json()["problems"])


SUPERUSER = {
    "key": "auth.user:1",
    "model": "auth.user",
    "fields": {
        "id": 1,
        "username": "mallory",
        "password": "pbkdf2_sha256$1000000$salt$hash",
        "is_superuser": True,
        "is_staff": True,
        "is_active": True,
    },
    "m2m": {},
}


@pytest.mark.django_db
def test_a_bag_holding_a_superuser_is_refused_and_writes_nothing(client, tmp_path):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))

    # The records of the collection plus one superuser: the whole bag is refused.
    escalation = rebagged(bag, tmp_path, lambda doc: doc["records"].insert(0, dict(SUPERUSER)))
    problems = refused_import(client, escalation)
    assert "'auth.user' is never imported" in problems
    assert not User.objects.filter(username="mallory").exists()
    assert not Collection.objects.exists() and not StoredFile.objects.exists()

    # A bag of nothing but the superuser, as the tester made it.
    def only_the_superuser(doc):
        doc.update(agents={}, files={}, records=[dict(SUPERUSER)])
        doc["scope"]["root"] = "auth.user:1"

    assert "'auth.user'" in refused_import(client, rebagged(bag, tmp_path, only_the_superuser))
    assert not User.objects.filter(is_superuser=True).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "label",
    [
        "auth.group",
        "auth.permission",
        "authtoken.token",
        "sessions.session",
        "admin.logentry",
        "contenttypes.contenttype",
    ],
)
def test_accounts_rights_sessions_and_the_admin_log_are_never_imported(client, tmp_path, label):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))
    record = {"key": f"{label}:1", "model": label, "fields": {}, "m2m": {}}
    hostile = rebagged(bag, tmp_path, lambda doc: doc["records"].append(record))
    assert f"'{label}' is never imported" in refused_import(client, hostile)


@pytest.mark.django_db
def test_a_record_outside_the_scope_is_refused_naming_its_label(client, tmp_path):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))
    job = {"key": "archives.job:1", "model": "archives.job", "fields": {"kind": "x"}, "m2m": {}}
    problems = refused_import(client, rebagged(bag, tmp_path, lambda d: d["records"].append(job)))
    assert "'archives.job' is not part of a collection bag" in problems
    run = {"key": "generation.trainingrun:1", "model": "generation.trainingrun", "fields": {}}
    problems = refused_import(client, rebagged(bag, tmp_path, lambda d: d["records"].append(run)))
    assert "'generation.trainingrun' is not part of a collection bag" in problems

    # A foreign key may only point at a record of the model it expects.
    def collection_points_at_a_file(doc):
        item = next(r for r in doc["records"] if r["model"] == "heritage.heritageitem")
        item["fields"]["collection"] = next(iter(doc["files"]))

    problems = refused_import(client, rebagged(bag, tmp_path, collection_points_at_a_file))
    assert "collection must refer to a heritage.collection record" in problems


@pytest.mark.django_db
def test_people_in_a_bag_are_never_created_but_linked_or_left_out_and_reported(client, tmp_path):
    annotator = make_user("annotator1", "curator", first_name="Aygul")
    small_catalogue(annotator=annotator)
    bag = tmp_path / "bag.tar"
    bag_export_file(scope="collection", target_id="atlas", archive_format="tar", target=bag)
    flush_catalogue()
    annotator.delete()  # another instance: nobody called annotator1 here
    client.force_login(make_archivist("arch"))
    users = User.objects.count()

    response = client.post(IMPORT, {"file": upload_of(bag)})
    assert response.status_code == 201, response.json()
    report = response.json()["users"]
    assert report["created"] == 0 and report["not_here"] == ["annotator1"]
    assert {c["field"] for c in report["cleared"]} == {"annotator"}
    assert User.objects.count() == users
    assert SemioticAnnotation.objects.count() == 3
    assert not SemioticAnnotation.objects.filter(annotator__isnull=False).exists()

    # Where the account exists, the records are linked to it (no new account either).
    flush_catalogue()
    BagImport.objects.all().delete()
    make_user("annotator1")
    page = client.post("/archives/import/", {"file": upload_of(bag)})
    assert page.status_code == 200
    assert "People linked to accounts here: annotator1" in page.content.decode()
    assert set(SemioticAnnotation.objects.values_list("annotator__username", flat=True)) == {
        "annotator1"
    }


def _closure_labels(spec) -> set[str]:
    """Every model label an export of ``spec`` can write, from the models' own relations."""
    labels, changed = {spec.root}, True
    while changed:
        before = set(labels)
        for parent, child, _field in spec.reverse:
            if parent in labels:
                labels.add(child)
        for label in list(labels):
            model = apps.get_model(label)
            for f in model._meta.concrete_fields:
                target = f.related_model and f.related_model._meta.label_lower
                if target and target not in NOT_EXPORTED | {FILE_LABEL, user_label()}:
                    labels.add(target)
            for f in model._meta.many_to_many:
                if f.related_model._meta.label_lower in spec.pull_m2m:
                    labels.add(f.related_model._meta.label_lower)
        changed = labels != before
    return labels


@pytest.mark.parametrize("scope", sorted(SCOPES))
def test_every_model_an_export_writes_is_on_its_scopes_import_list(scope):
    assert _closure_labels(SCOPES[scope]) <= IMPORTABLE[scope]
    assert not {label.partition(".")[0] for label in IMPORTABLE[scope]} & NEVER_IMPORTED_APPS
