"""The public catalogue API: visibility, filters, writes by curators, caching, bulk import."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from archives.models import StoredFile
from heritage import services
from heritage.models import HeritageItem, ItemImage
from jobs.models import Job
from tests.conftest import make_user
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def curator_client(curator):
    client = APIClient()
    client.force_login(curator)
    return client


def accessions(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["accession_number"] for row in response.json()["results"]]


def test_anonymous_reads_published_only(anon, catalogue):
    listed = anon.get("/api/v1/items/")
    assert accessions(listed) == ["ATL-000", "ATL-001", "ATL-002"]
    assert "annotations" not in listed.json()["results"][0]["images"][0]  # in the detail only
    assert [c["slug"] for c in anon.get("/api/v1/collections/").json()["results"]] == ["atlas"]
    assert anon.get(f"/api/v1/items/{catalogue['items'][3].pk}/").status_code == 404
    assert anon.get(f"/api/v1/items/{catalogue['secret'].pk}/").status_code == 404
    assert anon.get("/api/v1/collections/hidden/").status_code == 404
    images = anon.get("/api/v1/images/").json()
    assert images["count"] == 3
    assert anon.get("/api/v1/annotations/").json()["count"] == 3


def test_item_detail_shape(anon, catalogue):
    item = catalogue["items"][0]
    body = anon.get(f"/api/v1/items/{item.pk}/").json()
    assert body["title"] == {"en": "Atlas pattern 0", "zh": "图案 0"}
    assert body["collection"] == "atlas"
    assert body["rights"].startswith("http://rightsstatements.org/")
    assert body["iiif_manifest"] == f"/iiif/items/{item.pk}/manifest"
    image = body["images"][0]
    assert image["thumbnail_url"].endswith("/0/default.jpg")
    annotation = image["annotations"][0]
    assert annotation["category"] == "iconographic"
    assert annotation["motifs"] == ["tassel"]
    assert annotation["region"] == {"x": 2, "y": 2, "w": 10, "h": 10}


def test_curator_sees_everything(curator_client, catalogue):
    assert len(accessions(curator_client.get("/api/v1/items/?page_size=100"))) == 5


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("collection=atlas", ["ATL-000", "ATL-001", "ATL-002"]),
        ("category=directional", ["ATL-001"]),
        ("motif=tassel", ["ATL-000", "ATL-002"]),
        ("q=pattern 2", ["ATL-002"]),
        ("q=图案 1", ["ATL-001"]),
        ("q=comb", ["ATL-001"]),
        ("q=nothing-matches", []),
    ],
)
def test_item_filters(anon, catalogue, query, expected):
    assert accessions(anon.get(f"/api/v1/items/?{query}")) == expected


def test_bad_filter_value_is_a_400(anon, catalogue):
    response = anon.get("/api/v1/items/?category=poetic")
    assert response.status_code == 400
    assert "category" in response.json()


def test_pagination(anon, catalogue):
    body = anon.get("/api/v1/items/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]


def test_etag_and_cache_control(anon, catalogue):
    first = anon.get("/api/v1/items/")
    assert first["ETag"]
    assert "public" in first["Cache-Control"] and "max-age=60" in first["Cache-Control"]
    again = anon.get("/api/v1/items/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    services.item_update(item=catalogue["items"][0], period="1900s")
    changed = anon.get("/api/v1/items/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed["ETag"] != first["ETag"]


def test_signed_in_reads_are_private(curator_client, catalogue):
    response = curator_client.get("/api/v1/items/")
    assert "private" in response["Cache-Control"]


def test_writes_need_a_curator(anon, catalogue):
    payload = {"accession_number": "N-1", "collection": "atlas", "title": {"en": "New"}}
    assert anon.post("/api/v1/items/", payload, format="json").status_code in (401, 403)
    visitor = APIClient()
    visitor.force_login(make_user("visitor"))
    assert visitor.post("/api/v1/items/", payload, format="json").status_code == 403
    assert not HeritageItem.objects.filter(accession_number="N-1").exists()


def test_curator_creates_and_edits(curator_client, catalogue):
    response = curator_client.post(
        "/api/v1/items/",
        {
            "accession_number": "N-1",
            "collection": "atlas",
            "title": {"en": "New", "ug": "يېڭى"},
            "rights": "https://creativecommons.org/licenses/by/4.0/",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    pk = response.json()["id"]
    response = curator_client.patch(f"/api/v1/items/{pk}/", {"period": "1920s"}, format="json")
    assert response.status_code == 200 and response.json()["period"] == "1920s"
    bad = curator_client.patch(
        f"/api/v1/items/{pk}/", {"rights": "https://example.org/x"}, format="json"
    )
    assert bad.status_code == 400 and "rights" in bad.json()
    bad = curator_client.patch(
        f"/api/v1/items/{pk}/", {"title": ["not", "a", "map"]}, format="json"
    )
    assert bad.status_code == 400


def test_upload_queues_derivatives_and_rejects_bad_images(curator_client, catalogue):
    item = catalogue["items"][0]
    upload = SimpleUploadedFile("new.png", image_bytes(size=(30, 20)), content_type="image/png")
    response = curator_client.post(
        "/api/v1/images/", {"item": item.accession_number, "file": upload}, format="multipart"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["width"] == 30 and body["derivatives_ready"] is False
    assert Job.objects.filter(kind="heritage.derivatives", params={"image_id": body["id"]}).exists()
    files, images = StoredFile.objects.count(), ItemImage.objects.count()
    bad = SimpleUploadedFile("evil.png", b"<?php echo 1; ?>", content_type="image/png")
    response = curator_client.post(
        "/api/v1/images/", {"item": item.accession_number, "file": bad}, format="multipart"
    )
    assert response.status_code == 400
    assert "not an image" in response.json()["file"][0]
    assert (StoredFile.objects.count(), ItemImage.objects.count()) == (files, images)


def test_annotation_region_outside_image_is_a_400(curator_client, catalogue):
    image = catalogue["items"][0].images.get()
    response = curator_client.post(
        "/api/v1/annotations/",
        {
            "image": image.pk,
            "category": "cultural_semiotic",
            "motifs": ["comb"],
            "region": {"x": 0, "y": 0, "w": 5000, "h": 5},
            "meaning": {"en": "luck"},
        },
        format="json",
    )
    assert response.status_code == 400 and "outside the image" in json.dumps(response.json())
    response = curator_client.post(
        "/api/v1/annotations/",
        {"image": image.pk, "category": "cultural_semiotic", "motifs": ["comb"]},
        format="json",
    )
    assert response.status_code == 201 and response.json()["motifs"] == ["comb"]


def test_passages(anon, curator_client, catalogue):
    body = anon.get("/api/v1/passages/?item=ATL-000").json()
    assert body["count"] == 1 and body["results"][0]["items"] == ["ATL-000"]
    response = curator_client.post(
        "/api/v1/passages/",
        {
            "source_work": "Gazetteer",
            "section": "Geography",
            "original_text": "江",
            "items": ["ATL-001"],
        },
        format="json",
    )
    assert response.status_code == 201
    assert anon.get("/api/v1/passages/").json()["count"] == 1  # the new one is unpublished


def test_datasets_api(anon, curator_client, catalogue):
    response = curator_client.post(
        "/api/v1/datasets/",
        {"name": "atlas", "collections": ["atlas"], "resolution": 32, "validation_fraction": 0.25},
        format="json",
    )
    assert response.status_code == 201, response.content
    dataset = response.json()
    # The unpublished item's image is left out by default, and named for curators.
    assert dataset["train_count"] + dataset["validation_count"] == 3
    assert [e["accession_number"] for e in dataset["selection"]["excluded"]] == ["ATL-003"]
    assert anon.get(f"/api/v1/datasets/{dataset['id']}/").status_code == 404  # drafts hidden
    examples = curator_client.get(f"/api/v1/datasets/{dataset['id']}/examples/").json()["results"]
    edit = curator_client.patch(
        f"/api/v1/datasets/{dataset['id']}/examples/{examples[0]['id']}/",
        {"caption": "[U], edited"},
        format="json",
    )
    assert edit.status_code == 200 and edit.json()["caption"] == "[U], edited"
    freeze = curator_client.post(f"/api/v1/datasets/{dataset['id']}/freeze/")
    assert freeze.status_code == 202 and Job.objects.filter(pk=freeze.json()["job"]).exists()
    bad = curator_client.post(
        "/api/v1/datasets/", {"name": "x", "categories": ["poetic"]}, format="json"
    )
    assert bad.status_code == 400


def test_list_queries_do_not_grow_with_page_size(anon, catalogue, monkeypatch):
    from heritage import signals

    monkeypatch.setattr(signals, "VERSION_TTL", 0)  # count the version query every time
    atlas = catalogue["atlas"]
    for index in range(12):
        item = services.item_create(
            collection=atlas,
            accession_number=f"MORE-{index:02d}",
            title={"en": f"More {index}"},
            published=True,
        )
        image = services.item_image_create(
            item=item, content=image_bytes(size=(16, 16)), filename="m.png", derivatives="none"
        )
        services.annotation_create(
            image=image, category="iconographic", motifs=[catalogue["tassel"]]
        )
    counts = {}
    for endpoint in ("items", "images", "annotations"):
        for size in (2, 14):
            with CaptureQueriesContext(connection) as ctx:
                response = anon.get(f"/api/v1/{endpoint}/?page_size={size}")
            assert response.status_code == 200
            assert len(response.json()["results"]) == size
            counts[(endpoint, size)] = len(ctx.captured_queries)
        assert counts[(endpoint, 2)] == counts[(endpoint, 14)], (endpoint, counts)
    assert counts[("items", 14)] <= 6


def test_openapi_schema_documents_the_catalogue(anon):
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    for path in ("/api/v1/items/", "/api/v1/items/import/", "/api/v1/datasets/{id}/freeze/"):
        assert path in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/v1/items/"]["get"]["parameters"]}
    assert {"collection", "category", "motif", "q", "page", "page_size"} <= params


def test_anonymous_reads_are_cached_until_the_catalogue_changes(
    anon, catalogue, django_assert_num_queries
):
    url = f"/api/v1/items/{catalogue['items'][0].pk}/"
    first = anon.get(url).json()
    with CaptureQueriesContext(connection) as ctx:
        assert anon.get(url).json() == first
    assert len(ctx.captured_queries) <= 1  # at most the catalogue version
    services.item_update(item=catalogue["items"][0], place="Khotan")
    assert anon.get(url).json()["place"] == "Khotan"
    token_client = APIClient()
    token_client.credentials(HTTP_AUTHORIZATION="Token nonsense")
    assert token_client.get(url).status_code in (401, 403)  # never answered from the cache
