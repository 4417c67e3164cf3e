"""Catalogue curator pages (Django's test client): who may use them, refusals that change
nothing and say why (with the API's own messages), the import's dry run, datasets."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from archives.models import StoredFile
from heritage import services
from heritage.models import Collection, HeritageItem, SemioticAnnotation
from tests.conftest import make_user
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client):
    client.force_login(make_user("cur", "curator", is_staff=True))
    return client


@pytest.fixture
def item(db):
    collection = services.collection_create(slug="atlas", title={"en": "Atlas"})
    return services.item_create(collection=collection, accession_number="A-1", title={"en": "A"})


def test_catalogue_pages_are_for_curators_only(client, item):
    assert client.get("/curator/catalogue/").status_code == 302  # to the login page
    client.force_login(make_user("ex", "expert"))
    for path in ("/curator/", "/curator/catalogue/", f"/curator/catalogue/items/{item.pk}/"):
        assert client.get(path).status_code == 403, path
    assert client.post("/curator/catalogue/", {"slug": "x", "title_en": "X"}).status_code == 403
    assert not Collection.objects.filter(slug="x").exists()


def test_collection_needs_a_title_and_keeps_each_language(web):
    response = web.post("/curator/catalogue/", {"slug": "silk", "title_en": ""})
    assert response.status_code == 400
    assert "Give the title in at least one language." in response.content.decode()
    assert not Collection.objects.exists()
    response = web.post(
        "/curator/catalogue/", {"slug": "silk", "title_zh": "丝绸", "title_ug": "يىپەك"}
    )
    assert response.status_code == 302
    assert Collection.objects.get(slug="silk").title == {"zh": "丝绸", "ug": "يىپەك"}
    page = web.get("/curator/catalogue/collections/silk/").content.decode()
    assert 'name="title_ug" lang="ug" dir="rtl" value="يىپەك"' in page


def test_item_rights_are_checked_by_the_service(web, item):
    response = web.post(
        f"/curator/catalogue/items/{item.pk}/",
        {"title_en": "A", "rights": "https://example.org/mine", "version": item.version},
    )
    assert response.status_code == 400
    assert "rightsstatements.org or creativecommons.org" in response.content.decode()
    item.refresh_from_db()
    assert item.rights == ""


def test_upload_refuses_with_the_apis_message_and_accepts_an_image(web, item):
    bad = b"GIF89a but not really"
    api = APIClient()
    api.force_authenticate(make_user("cur2", "curator", is_staff=True))
    api_answer = api.post(
        "/api/v1/images/",
        {"item": item.accession_number, "file": SimpleUploadedFile("x.gif", bad)},
        format="multipart",
    )
    assert api_answer.status_code == 400
    api_message = api_answer.json()["file"][0]
    page_answer = web.post(
        f"/curator/catalogue/items/{item.pk}/images/",
        {"file": SimpleUploadedFile("x.gif", bad)},
        HTTP_ACCEPT="application/json",
    )
    assert page_answer.status_code == 400
    assert page_answer.json()["errors"] == [f"file: {api_message}"]
    assert not item.images.exists()
    good = web.post(
        f"/curator/catalogue/items/{item.pk}/images/",
        {"file": SimpleUploadedFile("a.png", image_bytes(size=(40, 30)))},
        HTTP_ACCEPT="application/json",
    )
    assert good.status_code == 201 and good.json()["size"] == "40 x 30 px"
    assert item.images.get().width == 40


def test_annotation_outside_the_image_is_refused_then_drawn_edited_and_deleted(web, item):
    image = services.item_image_create(
        item=item, content=image_bytes(size=(40, 30)), filename="a.png", derivatives="none"
    )
    services.motif_term_get_or_create(slug="comb")
    url = f"/curator/catalogue/images/{image.pk}/"
    outside = {
        "category": "iconographic",
        "region_x": "30",
        "region_y": "0",
        "region_w": "20",
        "region_h": "10",
    }
    response = web.post(url, outside)
    assert response.status_code == 400
    assert "The region lies outside the image (40x30)." in response.content.decode()
    assert not SemioticAnnotation.objects.exists()
    assert web.post(url, {**outside, "region_x": "5", "motifs": ["comb"]}).status_code == 302
    annotation = SemioticAnnotation.objects.get()
    assert annotation.region == (5, 0, 20, 10) and annotation.motifs.get().slug == "comb"
    edit = f"/curator/catalogue/annotations/{annotation.pk}/"
    web.post(
        edit,
        {
            "category": "directional",
            "region_x": "",
            "region_y": "",
            "region_w": "",
            "region_h": "",
            "version": annotation.version,
        },
    )
    annotation.refresh_from_db()
    assert annotation.category == "directional" and annotation.region is None
    assert list(annotation.motifs.all()) == []
    # A stale copy (someone saved meanwhile) is refused with the reason; nothing changes.
    web.post(edit, {"category": "iconographic", "version": 1})
    annotation.refresh_from_db()
    assert annotation.category == "directional"
    web.post(edit, {"action": "delete"})
    assert not SemioticAnnotation.objects.exists()


SHEET = (
    "accession_number,collection,title_en,image,category,motifs\n"
    "B-1,atlas,New item,b1.png,iconographic,\n"
    "B-2,atlas,Bad motif,b1.png,iconographic,no-such-motif\n"
    "A-1,atlas,Renamed,,,\n"
)


def test_import_previews_every_row_writes_nothing_then_imports(web, item):
    files_before = StoredFile.objects.count()
    response = web.post(
        "/curator/catalogue/import/",
        {
            "action": "preview",
            "sheet": SimpleUploadedFile("sheet.csv", SHEET.encode()),
            "images": [SimpleUploadedFile("b1.png", image_bytes(size=(32, 32)))],
        },
    )
    text = response.content.decode()
    assert response.status_code == 200
    assert "Preview: nothing has been written yet" in text
    assert "unknown motif terms [&#x27;no-such-motif&#x27;]" in text
    assert text.count('class="outcome-created"') == 1 and text.count('class="outcome-updated"') == 1
    # The dry run stored the image and made the item inside a rolled-back transaction.
    assert not HeritageItem.objects.filter(accession_number="B-1").exists()
    assert HeritageItem.objects.get(accession_number="A-1").title == {"en": "A"}
    assert StoredFile.objects.count() == files_before
    staging = response.context["staging"]
    done = web.post(
        "/curator/catalogue/import/",
        {"action": "import", "sheet_text": SHEET, "sheet_name": "sheet.csv", "staging": staging},
    ).content.decode()
    assert "Imported" in done
    assert HeritageItem.objects.get(accession_number="B-1").images.get().annotations.count() == 1
    assert HeritageItem.objects.get(accession_number="A-1").title == {"en": "Renamed"}
    assert not HeritageItem.objects.filter(accession_number="B-2").exists()


def test_import_staging_of_another_session_is_not_used(web, item, client):
    other = type(client)()
    other.force_login(make_user("cur3", "curator", is_staff=True))
    preview = other.post(
        "/curator/catalogue/import/",
        {
            "action": "preview",
            "sheet": SimpleUploadedFile("sheet.csv", SHEET.encode()),
            "images": [SimpleUploadedFile("b1.png", image_bytes(size=(32, 32)))],
        },
    )
    text = web.post(
        "/curator/catalogue/import/",
        {
            "action": "import",
            "sheet_text": SHEET,
            "sheet_name": "s.csv",
            "staging": preview.context["staging"],
        },
    ).content.decode()
    assert "image file &#x27;b1.png&#x27; was not found" in text
    assert not HeritageItem.objects.filter(accession_number="B-1").exists()


def test_import_template_is_the_import_format(web, item):
    from heritage import bulk

    response = web.get("/curator/catalogue/import/template.csv")
    assert response["Content-Disposition"].startswith("attachment;")
    header, example = response.content.decode().splitlines()[:2]
    assert header.split(",") == bulk.COLUMNS
    assert example.startswith("ATL-0001,atlas,")
    rows = bulk.parse_sheet(response.content, file_format="csv")
    assert rows[0]["category"] == "iconographic" and rows[0]["region"] == "10,10,120,80"


def test_dataset_count_and_caption_edits(web, item):
    services.item_update(item=item, published=True)
    services.collection_update(collection=item.collection, published=True)
    image = services.item_image_create(
        item=item,
        content=image_bytes(size=(40, 30)),
        filename="a.png",
        caption={"en": "silk"},
        derivatives="none",
    )
    count = web.get("/curator/catalogue/datasets/count/?collections=atlas").content.decode()
    assert "1 image matches" in count and "would go in" not in count
    assert (
        "0 images match"
        in web.get("/curator/catalogue/datasets/count/?collections=none").content.decode()
    )
    response = web.post(
        "/curator/catalogue/datasets/",
        {"name": "d", "collections": ["atlas"], "resolution": "33", "validation_fraction": "0"},
    )
    assert response.status_code == 400 and "multiple of 8" in response.content.decode()
    response = web.post(
        "/curator/catalogue/datasets/",
        {"name": "d", "collections": ["atlas"], "resolution": "32", "validation_fraction": "0"},
    )
    dataset = item.images.get().training_examples.get().dataset
    assert response["Location"] == f"/curator/catalogue/datasets/{dataset.pk}/"
    example = dataset.examples.get(image=image)
    web.post(response["Location"], {f"caption-{example.pk}": "  ", f"split-{example.pk}": "train"})
    example.refresh_from_db()
    assert example.caption.strip()  # an empty caption is refused
    web.post(
        response["Location"],
        {f"caption-{example.pk}": "[U], red silk", f"split-{example.pk}": "train"},
    )
    example.refresh_from_db()
    assert example.caption == "[U], red silk"
