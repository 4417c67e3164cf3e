"""Bulk import (command and API) and export: idempotent, every bad row rejected with a reason."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from archives.models import StoredFile
from heritage.models import HeritageItem, ItemImage, SemioticAnnotation
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db
HEADER = (
    "accession_number,collection,title_en,title_zh,rights,published,image,category,motifs,"
    "meaning_en,region"
)
SHEET = f"""{HEADER}
IMP-1,atlas,Imported one,导入一,{"http://rightsstatements.org/vocab/InC/1.0/"},true,one.png,\
iconographic,tassel;comb,Looks like a tassel,"1,1,5,5"
IMP-2,atlas,Imported two,,,false,two.png,directional,comb,,
IMP-3,nowhere,Bad collection,,,true,,,,,
IMP-4,atlas,Bad motif,,,true,one.png,iconographic,unicorn,,
IMP-5,atlas,Bad image,,,true,bad.png,,,,
IMP-6,atlas,Missing image,,,true,missing.png,,,,
IMP-7,atlas,Bad rights,,https://example.org/mine,true,,,,,
,atlas,No accession,,,true,,,,,
IMP-8,atlas,Region outside,,,true,two.png,directional,comb,,"0,0,999,5"
"""


@pytest.fixture
def folder(tmp_path, catalogue):
    (tmp_path / "one.png").write_bytes(image_bytes(size=(20, 20)))
    (tmp_path / "two.png").write_bytes(image_bytes(size=(30, 20), color=(1, 2, 3)))
    (tmp_path / "bad.png").write_bytes(b"GIF89a nonsense")
    (tmp_path / "sheet.csv").write_text(SHEET, encoding="utf-8")
    return tmp_path


def run_import(folder) -> dict:
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("import_catalogue", str(folder / "sheet.csv"), "--json", stdout=out)
    return json.loads(out.getvalue())


def test_import_command_is_idempotent_and_reports_rejections(folder):
    files_before = StoredFile.objects.count()
    report = run_import(folder)
    assert (report["created"], report["images_added"], report["annotations_added"]) == (2, 2, 2)
    reasons = {row["row"]: row["reason"] for row in report["rejected"]}
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9]
    assert "unknown collection 'nowhere'" in reasons[3]
    assert "unicorn" in reasons[4]
    assert "not an image" in reasons[5]
    assert "not found" in reasons[6]
    assert "rights" in reasons[7]
    assert "accession_number is missing" in reasons[8]
    assert "outside the image" in reasons[9]
    # Rejected rows left nothing behind: no items, no images, no files.
    assert not HeritageItem.objects.filter(
        accession_number__in=["IMP-4", "IMP-5", "IMP-8"]
    ).exists()
    assert StoredFile.objects.count() == files_before + 2  # two originals (derivatives queued)
    item = HeritageItem.objects.get(accession_number="IMP-1")
    assert item.title == {"en": "Imported one", "zh": "导入一"} and item.published
    annotation = SemioticAnnotation.objects.get(image__item=item)
    assert sorted(m.slug for m in annotation.motifs.all()) == ["comb", "tassel"]
    assert annotation.region == (1, 1, 5, 5)
    again = run_import(folder)
    assert (again["created"], again["images_added"], again["annotations_added"]) == (0, 0, 0)
    assert again["unchanged"] == 2 and len(again["rejected"]) == 7
    assert ItemImage.objects.filter(item__accession_number__startswith="IMP").count() == 2


def test_import_through_the_api_and_export_round_trip(folder, curator):
    client = APIClient()
    client.force_login(curator)
    response = client.post(
        "/api/v1/items/import/",
        {
            "sheet": SimpleUploadedFile("sheet.csv", SHEET.encode()),
            "images": [
                SimpleUploadedFile("one.png", (folder / "one.png").read_bytes()),
                SimpleUploadedFile("two.png", (folder / "two.png").read_bytes()),
            ],
        },
        format="multipart",
    )
    assert response.status_code == 200, response.content
    assert response.json()["created"] == 2 and len(response.json()["rejected"]) == 7
    assert APIClient().post("/api/v1/items/import/", {}, format="multipart").status_code in (
        401,
        403,
    )
    exported = client.get("/api/v1/items/export/?file_format=csv&collection=atlas")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    imp1 = [r for r in rows if r["accession_number"] == "IMP-1"]
    assert (
        imp1
        and imp1[0]["motifs"] in ("tassel;comb", "comb;tassel")
        and imp1[0]["region"] == "1,1,5,5"
    )
    as_json = client.get("/api/v1/items/export/?file_format=json").json()
    assert {r["accession_number"] for r in as_json["items"]} >= {"ATL-000", "IMP-1", "IMP-2"}
    anonymous = APIClient().get("/api/v1/items/export/?file_format=json").json()
    assert "IMP-2" not in {r["accession_number"] for r in anonymous["items"]}  # unpublished


def test_export_command(tmp_path, catalogue):
    out = tmp_path / "cat.json"
    call_command("export_catalogue", str(out), "--collection", "atlas", stdout=io.StringIO())
    rows = json.loads(out.read_text())["items"]
    assert {r["accession_number"] for r in rows} == {"ATL-000", "ATL-001", "ATL-002", "ATL-003"}
