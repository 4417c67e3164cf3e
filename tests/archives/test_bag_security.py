"""Bag work is the archivist's; hostile bags are refused before they write anything.

Through the API and pages with the real database: who may import, export, validate and run
fixity; bags that smuggle accounts or foreign records in ``atelier.json``; archives that
declare too much (zip bombs) or lie about their sizes; temporary folders left behind.
"""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import bagit
import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.test import Client

from archives.bag_graph import FILE_LABEL, user_label
from archives.bag_registry import bag_scopes, not_exported, vocabularies
from archives.bagit_export import bag_export_file
from archives.bagit_import import NEVER_IMPORTED_APPS
from archives.bagit_validate import bag_validate
from archives.models import BagExport, BagImport, StoredFile
from heritage.models import Collection, SemioticAnnotation
from jobs.models import Job
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


def _closure_labels(scope) -> set[str]:
    """Every model label an export of ``scope`` can write, from the models' own relations."""
    labels, changed = {scope.root}, True
    while changed:
        before = set(labels)
        for relation in scope.relations:
            if relation.parent in labels:
                labels.add(relation.child)
        for label in list(labels):
            model = apps.get_model(label)
            for f in model._meta.concrete_fields:
                target = f.related_model and f.related_model._meta.label_lower
                if target and target not in not_exported() | {FILE_LABEL, user_label()}:
                    labels.add(target)
            for f in model._meta.many_to_many:
                if f.related_model._meta.label_lower in vocabularies():
                    labels.add(f.related_model._meta.label_lower)
        changed = labels != before
    return labels


def test_the_apps_register_the_three_scopes_and_jobs_never_leave():
    """Registered by heritage, generation and evaluation (their bag.py), not by archives."""
    assert sorted(bag_scopes()) == ["collection", "study", "training_run"]
    assert {"jobs.job", "archives.bagexport", "archives.bagimport"} <= not_exported()


@pytest.mark.parametrize("scope", ["collection", "study", "training_run"])
def test_every_model_an_export_writes_is_on_its_scopes_import_list(scope):
    registered = bag_scopes()[scope]
    assert _closure_labels(registered) <= registered.importable
    assert not {label.partition(".")[0] for label in registered.importable} & NEVER_IMPORTED_APPS


# --- archives checked before they touch the disk ------------------------------------------------


class DiskWrites:
    """Files and folders created under ``folder`` while active, from Python's audit events.

    Every ``open`` for writing (builtin ``open`` and ``os.open``, which ``tempfile`` uses) and
    every ``os.mkdir`` raises an audit event, so this sees extraction without replacing it.
    """

    active: DiskWrites | None = None
    _WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def __init__(self, folder: Path):
        self.folder, self.created = str(folder), []

    def __enter__(self) -> DiskWrites:
        DiskWrites.active = self
        return self

    def __exit__(self, *exc) -> None:
        DiskWrites.active = None

    @staticmethod
    def hook(event: str, args: tuple) -> None:
        watch = DiskWrites.active
        if watch is None or event not in ("open", "os.mkdir"):
            return
        path = args[0]
        if not isinstance(path, str | Path) or not str(path).startswith(watch.folder):
            return
        if event == "open":
            mode, flags = args[1], args[2]
            writing = any(c in mode for c in "wxa+") if mode else flags & DiskWrites._WRITE_FLAGS
            if not writing:
                return
        watch.created.append(os.path.relpath(str(path), watch.folder))

    def extracted(self) -> list[str]:
        """What was written besides the upload itself (``atelier-upload-*/upload.bag``)."""
        return [p for p in self.created if not p.startswith("atelier-upload-")]


sys.addaudithook(DiskWrites.hook)  # audit hooks stay for the process; inactive outside tests


@pytest.fixture
def temp_dir(tmp_path, monkeypatch) -> Path:
    """Every temporary file and folder (uploads, extracted bags) goes to a folder of the test."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def bag_members(folder: Path) -> dict[str, bytes]:
    return {
        f"{folder.name}/{p.relative_to(folder).as_posix()}": p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def small_bag(tmp_path: Path, **payload: bytes) -> Path:
    folder = tmp_path / "smallbag"
    (folder).mkdir()
    for name, data in (payload or {"a.txt": b"alpha\n"}).items():
        (folder / name).write_bytes(data)
    bagit.make_bag(str(folder), {"Source-Organization": "Test"}, checksums=["sha256"])
    return folder


def zip_bytes(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression, compresslevel=9) as packed:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | 0o644) << 16  # a regular file, as zip(1) writes
            packed.writestr(info, data, compress_type=compression)
    return buffer.getvalue()


def declare_size(data: bytes, member: str, size: int) -> bytes:
    """The zip with ``member``'s uncompressed size rewritten in both of its headers."""
    out = bytearray(data)
    encoded = member.encode()
    local = out.index(b"PK\x03\x04" + out[4:4])  # first local header
    while True:
        name_len = struct.unpack_from("<H", out, local + 26)[0]
        if out[local + 30 : local + 30 + name_len] == encoded:
            struct.pack_into("<I", out, local + 22, size)
            break
        local = out.index(b"PK\x03\x04", local + 4)
    central = out.index(b"PK\x01\x02")
    while True:
        name_len = struct.unpack_from("<H", out, central + 28)[0]
        if out[central + 46 : central + 46 + name_len] == encoded:
            struct.pack_into("<I", out, central + 24, size)
            return bytes(out)
        central = out.index(b"PK\x01\x02", central + 4)


def post_bag(client, url: str, name: str, data: bytes):
    upload = io.BytesIO(data)
    upload.name = name
    return client.post(url, {"file": upload})


@pytest.mark.django_db
def test_a_zip_bomb_is_refused_before_anything_is_extracted(client, tmp_path, temp_dir):
    client.force_login(make_archivist("arch"))
    members = bag_members(small_bag(tmp_path))
    # 64 MB of zeros packs to about 64 KB: a ratio of ~1000:1, within every size limit.
    bomb = zip_bytes({**members, "smallbag/data/zeros.bin": bytes(64 * 1024 * 1024)})
    assert len(bomb) < 200_000
    for url in (VALIDATE, IMPORT):
        with DiskWrites(temp_dir) as writes:
            response = post_bag(client, url, "bomb.zip", bomb)
        assert response.status_code == 400
        problems = "\n".join(response.json()["problems"])
        assert "compression ratio over the limit of 200:1" in problems
        assert "nothing was extracted" in problems
        assert writes.extracted() == []
        assert list(temp_dir.iterdir()) == []
    assert not BagImport.objects.exists() and not StoredFile.objects.exists()


@pytest.mark.django_db
def test_a_small_zip_declaring_gigabytes_is_refused_unread(client, tmp_path, temp_dir):
    """The issue's case: 1.5 GiB declared in the zip's headers by a small file."""
    client.force_login(make_archivist("arch"))
    members = bag_members(small_bag(tmp_path, **{"big.bin": os.urandom(4096)}))
    liar = declare_size(zip_bytes(members), "smallbag/data/big.bin", 3 * 1024**3 // 2)
    with DiskWrites(temp_dir) as writes:
        response = post_bag(client, VALIDATE, "declares.zip", liar)
    assert response.status_code == 400
    assert "compression ratio over the limit" in "\n".join(response.json()["problems"])
    assert writes.extracted() == [] and list(temp_dir.iterdir()) == []


@pytest.mark.django_db
def test_size_limits_come_from_settings(client, tmp_path, temp_dir, settings):
    client.force_login(make_archivist("arch"))
    # Hex digits pack about 2:1: a 300 KB payload in a zip of about 160 KB.
    members = bag_members(small_bag(tmp_path, **{"noise.txt": os.urandom(150_000).hex().encode()}))
    packed = zip_bytes(members)
    assert len(packed) < 200_000
    settings.ATELIER_BAG_MAX_BYTES = 200_000
    with DiskWrites(temp_dir) as writes:
        response = post_bag(client, VALIDATE, "big.zip", packed)
    assert response.status_code == 400
    assert "more than 200000 bytes unpacked in total" in "\n".join(response.json()["problems"])
    assert writes.extracted() == []
    settings.ATELIER_BAG_MAX_BYTES = 10**9
    settings.ATELIER_BAG_MAX_FILE_BYTES = 100_000
    response = post_bag(client, VALIDATE, "big.zip", packed)
    assert "over the limit of 100000 per file" in "\n".join(response.json()["problems"])
    settings.ATELIER_BAG_MAX_FILE_BYTES = 10**9
    assert post_bag(client, VALIDATE, "big.zip", packed).json()["valid"] is True
    assert list(temp_dir.iterdir()) == []


@pytest.mark.django_db
def test_a_zip_whose_header_understates_a_member_is_refused(client, tmp_path, temp_dir):
    client.force_login(make_archivist("arch"))
    members = bag_members(small_bag(tmp_path, **{"text.txt": b"lorem ipsum " * 5000}))
    liar = declare_size(zip_bytes(members), "smallbag/data/text.txt", 100)
    for url in (VALIDATE, IMPORT):
        response = post_bag(client, url, "understates.zip", liar)
        assert response.status_code == 400
        assert "headers lie about the data" in "\n".join(response.json()["problems"])
    assert list(temp_dir.iterdir()) == []
    assert not StoredFile.objects.exists()


def sparse_header(name: str, stored: int, real: int) -> bytes:
    """A GNU sparse member's header: ``stored`` bytes in the archive that unpack to ``real``."""
    buf = bytearray(tarfile.TarInfo(name).tobuf(tarfile.GNU_FORMAT))
    buf[124:136] = b"%011o\0" % stored  # size: what the archive holds
    buf[156:157] = tarfile.GNUTYPE_SPARSE
    buf[386:398] = b"%011o\0" % (real - stored)  # one data run at the end of the file
    buf[398:410] = b"%011o\0" % stored
    buf[483:495] = b"%011o\0" % real  # realsize: what it unpacks to
    buf[148:156] = b" " * 8
    buf[148:155] = b"%06o\0" % sum(buf[:512])
    return bytes(buf[:512])


@pytest.mark.django_db
def test_a_tar_member_declaring_far_more_than_it_holds_is_refused(client, tmp_path, temp_dir):
    client.force_login(make_archivist("arch"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as packed:
        for name, data in bag_members(small_bag(tmp_path)).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            packed.addfile(info, io.BytesIO(data))
    plain = buffer.getvalue().rstrip(b"\0")
    plain += b"\0" * (-len(plain) % 512)
    # 512 bytes in the archive that a sparse header says unpack to 256 MB (of zeros).
    sparse = sparse_header("smallbag/data/holes.bin", 512, 256 * 1024 * 1024) + b"z" * 512
    hostile = plain + sparse + b"\0" * 1024
    with tarfile.open(fileobj=io.BytesIO(hostile)) as check:
        assert check.getmember("smallbag/data/holes.bin").size == 256 * 1024 * 1024
    for url in (VALIDATE, IMPORT):
        with DiskWrites(temp_dir) as writes:
            response = post_bag(client, url, "sparse.tar", hostile)
        assert response.status_code == 400
        assert "sparse files are not allowed" in "\n".join(response.json()["problems"])
        assert writes.extracted() == []
    assert list(temp_dir.iterdir()) == [] and not StoredFile.objects.exists()

    # A header that promises more bytes than the archive holds (cut short): refused too.
    last = plain.rindex(b"smallbag/data/a.txt")
    short = plain[: last + 512] + b"al"
    response = post_bag(client, IMPORT, "short.tar", short)
    assert response.status_code == 400
    assert "unexpected end of data" in "\n".join(response.json()["problems"])
    assert list(temp_dir.iterdir()) == []


@pytest.mark.django_db
def test_bags_are_unpacked_in_the_configured_folder_and_it_is_emptied(
    client, tmp_path, temp_dir, settings
):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))
    work = tmp_path / "bag-work"  # e.g. a large volume for 8 GiB bags
    work.mkdir()
    settings.ATELIER_BAG_TEMP_DIR = str(work)
    with DiskWrites(work) as writes:
        assert client.post(VALIDATE, {"file": upload_of(bag)}).json()["valid"] is True
        assert client.post(IMPORT, {"file": upload_of(bag)}).status_code == 201
        # The same bag again conflicts (its collection exists): refused after extraction.
        assert client.post(IMPORT, {"file": upload_of(bag)}).status_code == 400
        assert client.post("/archives/import/", {"file": upload_of(bag)}).status_code == 400
        broken = bag.read_bytes()[:-3000]  # cut inside the last member
        assert post_bag(client, VALIDATE, "broken.tar", broken).status_code == 400
    assert any(p.startswith("atelier-bag-") for p in writes.created)  # extracted there
    assert any(p.startswith("atelier-upload-") for p in writes.created)
    assert list(work.iterdir()) == []
    assert list(temp_dir.iterdir()) == []


@pytest.mark.django_db
def test_bag_uploads_over_the_request_limit_are_refused_unread(
    client, tmp_path, temp_dir, settings
):
    bag = exported(tmp_path)
    client.force_login(make_archivist("arch"))
    settings.ATELIER_BAG_MAX_UPLOAD_BYTES = 1000
    with DiskWrites(temp_dir) as writes:
        for url in (VALIDATE, IMPORT):
            response = client.post(url, {"file": upload_of(bag)})
            assert response.status_code == 413
            assert "over the limit of 1000 for a bag" in response.json()["detail"]
        for page in ("/archives/validate/", "/archives/import/"):
            response = client.post(page, {"file": upload_of(bag)})
            assert response.status_code == 413
            assert b"over the limit of 1000" in response.content
    assert writes.created == []
    assert not BagImport.objects.exists() and not Collection.objects.exists()


@pytest.mark.django_db
def test_the_upload_pages_still_check_csrf(tmp_path):
    bag = exported(tmp_path)
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_archivist("arch"))
    assert client.post("/archives/import/", {"file": upload_of(bag)}).status_code == 403
    assert not BagImport.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "outcome", [{"status": "queued"}, {"status": "running"}, {"status": "bogus"}, None, "x"]
)
def test_an_imported_run_never_gets_a_job_that_would_start_work(outcome):
    """A bag saying a run is queued or running (or saying nothing) must not queue work here:
    the imported run's job is a finished, failed one that says why."""
    from archives.bagit_import import imported_outcome_job

    job = imported_outcome_job(outcome)
    assert job.status == "failed" and job.is_finished
    assert "does not say how it ended" in job.error
    assert not Job.objects.filter(status__in=["queued", "running"]).exists()


@pytest.mark.django_db
def test_an_imported_run_keeps_the_outcome_its_bag_records():
    from archives.bagit_import import imported_outcome_job

    job = imported_outcome_job(
        {"status": "failed", "finished_at": "2026-11-30T10:00:00+00:00", "error": "out of memory"}
    )
    assert (job.status, job.error, job.finished_at.isoformat()) == (
        "failed",
        "out of memory",
        "2026-11-30T10:00:00+00:00",
    )
