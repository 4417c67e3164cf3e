"""IIIF Presentation 3.0 and Image API 3.0 (level1): the properties the specs require."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from heritage import services
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db
BASE = "http://testserver"


def get_json(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "application/ld+json" in response["Content-Type"]
    return response.json()


def is_langmap(value) -> bool:
    return (
        isinstance(value, dict)
        and value
        and all(
            isinstance(k, str) and isinstance(v, list) and all(isinstance(s, str) for s in v)
            for k, v in value.items()
        )
    )


def test_manifest_required_properties(client, catalogue):
    item = catalogue["items"][0]
    manifest = get_json(client, f"/iiif/items/{item.pk}/manifest")
    assert manifest["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert manifest["type"] == "Manifest"
    assert manifest["id"] == f"{BASE}/iiif/items/{item.pk}/manifest"
    assert is_langmap(manifest["label"]) and manifest["label"]["zh"] == ["图案 0"]
    assert is_langmap(manifest["summary"])
    assert manifest["rights"] == "http://rightsstatements.org/vocab/InC/1.0/"
    statement = manifest["requiredStatement"]
    assert is_langmap(statement["label"]) and statement["value"] == {"en": ["Demo museum"]}
    assert all(is_langmap(m["label"]) and is_langmap(m["value"]) for m in manifest["metadata"])
    assert manifest["thumbnail"][0]["type"] == "Image"
    assert manifest["items"], "a Manifest needs at least one Canvas"
    canvas = manifest["items"][0]
    assert canvas["type"] == "Canvas" and canvas["id"].startswith(manifest["id"])
    assert (canvas["width"], canvas["height"]) == (40, 32)
    painting = canvas["items"][0]
    assert painting["type"] == "AnnotationPage"
    anno = painting["items"][0]
    assert anno["motivation"] == "painting" and anno["target"] == canvas["id"]
    body = anno["body"]
    assert body["type"] == "Image" and body["format"] == "image/jpeg"
    assert body["service"][0]["type"] == "ImageService3"
    assert body["service"][0]["profile"] == "level1"
    # Semiotic annotations: on canvas.annotations, never painting, regions as xywh fragments.
    page = canvas["annotations"][0]
    assert page["type"] == "AnnotationPage"
    motivations = {a["motivation"] for a in page["items"]}
    assert motivations == {"describing", "tagging"}
    for annotation in page["items"]:
        assert annotation["type"] == "Annotation"
        assert annotation["target"] == f"{canvas['id']}#xywh=2,2,10,10"
    tag = next(a for a in page["items"] if a["motivation"] == "tagging")
    assert tag["body"]["value"] == "tassel"
    # The painted image is really served at the size the manifest claims.
    image = client.get(body["id"].removeprefix(BASE))
    assert image.status_code == 200
    with Image.open(io.BytesIO(image.getvalue())) as served:
        assert served.size == (body["width"], body["height"])


def test_unpublished_manifest_is_404_for_anonymous(client, catalogue):
    response = client.get(f"/iiif/items/{catalogue['items'][3].pk}/manifest")
    assert response.status_code == 404
    assert response["Access-Control-Allow-Origin"] == "*"


def test_collection_documents(client, catalogue):
    coll = get_json(client, "/iiif/collections/atlas")
    assert coll["@context"] == "http://iiif.io/api/presentation/3/context.json"
    assert coll["type"] == "Collection" and is_langmap(coll["label"])
    assert coll["label"]["ug"] == ["ئەتلەس"]
    assert [m["type"] for m in coll["items"]] == ["Manifest"] * 3
    assert all(is_langmap(m["label"]) for m in coll["items"])
    top = get_json(client, "/iiif/collections")
    assert [c["id"] for c in top["items"]] == [f"{BASE}/iiif/collections/atlas"]
    assert client.get("/iiif/collections/hidden").status_code == 404


def test_image_api_level1(client, catalogue):
    collection = catalogue["atlas"]
    item = services.item_create(
        collection=collection, accession_number="BIG-1", title={"en": "Big"}, published=True
    )
    image = services.item_image_create(
        item=item,
        content=image_bytes(size=(2000, 1200), fmt="JPEG"),
        filename="b.jpg",
        derivatives="now",
    )
    assert client.get(f"/iiif/image/{image.pk}").status_code == 303
    info = get_json(client, f"/iiif/image/{image.pk}/info.json")
    assert info["@context"] == "http://iiif.io/api/image/3/context.json"
    assert info["id"] == f"{BASE}/iiif/image/{image.pk}"
    assert info["type"] == "ImageService3"
    assert info["protocol"] == "http://iiif.io/api/image"
    assert info["profile"] == "level1"
    # Tiles for a deep-zoom viewer: 512 px, halving until the image fits one tile.
    assert info["tiles"] == [{"width": 512, "height": 512, "scaleFactors": [1, 2, 4]}]
    assert (info["width"], info["height"]) == (2000, 1200)
    assert info["sizes"] == [{"width": 256, "height": 154}, {"width": 1600, "height": 960}]
    assert (info["maxWidth"], info["maxHeight"]) == (1600, 960)
    for size in info["sizes"]:
        url = f"/iiif/image/{image.pk}/full/{size['width']},{size['height']}/0/default.jpg"
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
        assert response["Access-Control-Allow-Origin"] == "*"
        with Image.open(io.BytesIO(response.getvalue())) as served:
            assert served.size == (size["width"], size["height"])
        cached = client.get(url, HTTP_IF_NONE_MATCH=response["ETag"])
        assert cached.status_code == 304
    maximum = client.get(f"/iiif/image/{image.pk}/full/max/0/default.jpg")
    assert maximum.status_code == 200
    # The tile requests OpenSeadragon makes: regions in full-image pixels, sizes "w,h".
    for path, expected in (
        ("0,0,1024,1024/512,512", (512, 512)),  # scale factor 2
        ("1024,1024,1024,1024/488,88", (488, 88)),  # clipped at the corner: 976x176 at 1/2
        ("0,0,2000,1200/500,", (500, 300)),
        ("square/,100", (100, 100)),
        ("512,0,512,512/max", (410, 410)),  # max = the display derivative's resolution
    ):
        response = client.get(f"/iiif/image/{image.pk}/{path}/0/default.jpg")
        assert response.status_code == 200, (path, response.content)
        assert response["Content-Type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.getvalue())) as served:
            assert served.size == expected, path
        assert (
            client.get(
                f"/iiif/image/{image.pk}/{path}/0/default.jpg", HTTP_IF_NONE_MATCH=response["ETag"]
            ).status_code
            == 304
        )
    # Anything else is refused with a reason.
    for bad in (
        "full/1700,1020/0/default.jpg",  # above maxWidth
        "0,0,10,10/20,20/0/default.jpg",  # upscaling
        "0,0,10,10/^20,20/0/default.jpg",
        "pct:0,0,10,10/max/0/default.jpg",
        "3000,0,10,10/max/0/default.jpg",  # outside the image
        "full/,/0/default.jpg",
        "full/max/90/default.jpg",
        "full/max/0/gray.jpg",
        "full/max/0/default.png",
    ):
        response = client.get(f"/iiif/image/{image.pk}/{bad}")
        assert response.status_code == 400, bad
        assert response.json()["detail"]


def test_cors_preflight(client, catalogue):
    response = client.options(f"/iiif/items/{catalogue['items'][0].pk}/manifest")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
