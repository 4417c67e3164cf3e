"""Export → validate → import into an emptied database → the same records and checksums."""

from __future__ import annotations

import hashlib
import json
import tarfile
import zipfile

import pytest
from django.core.files.storage import default_storage

from archives.bagit_export import bag_export_file
from archives.bagit_import import bag_import
from archives.bagit_validate import bag_validate
from archives.models import BagImport, StoredFile
from heritage.models import Collection
from tests.archives.bagtools import catalogue_snapshot, flush_catalogue, small_catalogue
from tests.conftest import make_user


def _member_text(archive, name: str) -> str:
    if isinstance(archive, tarfile.TarFile):
        return archive.extractfile(name).read().decode()
    return archive.read(name).decode()


@pytest.mark.django_db
@pytest.mark.parametrize("archive_format", ["tar", "zip"])
def test_collection_round_trip(tmp_path, archive_format, settings):
    settings.ATELIER_ORGANISATION = "Museum of Silk"
    annotator = make_user("annotator1", "curator", first_name="Aygul", last_name="Tursun")
    small_catalogue(annotator=annotator)
    before = catalogue_snapshot()
    assert len(before["files"]) == 9  # 3 originals, 3 thumbnails, 3 display images

    target = tmp_path / f"bag.{archive_format}"
    built = bag_export_file(
        scope="collection", target_id="atlas", archive_format=archive_format, target=target
    )
    report = bag_validate(target)
    assert report.valid, report.problems
    assert report.info["Source-Organization"] == "Museum of Silk"
    for key in ("Contact-Email", "Bagging-Date", "External-Identifier", "Bag-Size", "Payload-Oxum"):
        assert report.info[key], key

    opener = tarfile.open(target) if archive_format == "tar" else zipfile.ZipFile(target)
    with opener as archive:
        names = archive.getnames() if archive_format == "tar" else archive.namelist()
        root = built.name
        assert f"{root}/manifest-sha256.txt" in names
        assert f"{root}/manifest-sha512.txt" in names
        provenance = json.loads(_member_text(archive, f"{root}/data/provenance.json"))
    event_types = {event["eventType"] for event in provenance["events"]}
    assert {"ingest", "annotation", "export"} <= event_types
    agents = {agent["agentIdentifier"]["agentIdentifierValue"] for agent in provenance["agents"]}
    assert "user:annotator1" in agents
    assert any(
        a["agentType"] == "software" and a["agentName"] == "bagit" for a in provenance["agents"]
    )
    fixities = {
        o["objectCharacteristics"][0]["fixity"][0]["messageDigest"]
        for o in provenance["objects"]
        if o["objectCategory"] == "file"
    }
    assert fixities == {sha for sha, *_ in before["files"]}

    flush_catalogue()
    assert not Collection.objects.exists() and not StoredFile.objects.exists()

    done = bag_import(path=target)
    assert done.records["heritage.collection"] == 1
    assert done.records["heritage.heritageitem"] == 3
    assert done.files == 9
    assert catalogue_snapshot() == before
    for stored in StoredFile.objects.all():
        with default_storage.open(stored.name, "rb") as handle:
            assert hashlib.sha256(handle.read()).hexdigest() == stored.sha256
    assert BagImport.objects.get().external_identifier == report.info["External-Identifier"]
