"""Anonymous responses never name an unpublished item: not its accession number, title, id or
image, in any list, detail, filter, search, IIIF document, passage, dataset or kiosk page; and a
filter naming a hidden record answers exactly like one naming a record that does not exist."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from archives.services import stored_file_save
from heritage import services
from heritage.models import TrainingDataset
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db

HIDDEN_ACCESSION = "ZQX-HIDDEN-7731"  # unpublished item in a published collection
HIDDEN_IN_COLLECTION = "ZQX-INCOLL-4402"  # published item in an unpublished collection
HIDDEN_TITLE = "Qwvx secret shawl"


@pytest.fixture
def leaky(db):
    """A published item beside two hidden ones, all with images, annotations, a passage that
    names all three, a frozen dataset chosen by their accession numbers and approved AI images
    made for each."""
    public_coll = services.collection_create(slug="openworks", title={"en": "Open"}, published=True)
    hidden_coll = services.collection_create(
        slug="closedworks", title={"en": "Closed"}, published=False
    )
    motif = services.motif_term_get_or_create(slug="ram-horn", label={"en": "ram horn"})
    specs = [
        ("PUB-OPEN-0001", "Open shawl", public_coll, True),
        (HIDDEN_ACCESSION, HIDDEN_TITLE, public_coll, False),
        (HIDDEN_IN_COLLECTION, HIDDEN_TITLE + " two", hidden_coll, True),
    ]
    items, images = [], []
    for index, (accession, title, coll, published) in enumerate(specs):
        item = services.item_create(
            collection=coll,
            accession_number=accession,
            title={"en": title},
            period="Qing",
            published=published,
        )
        image = services.item_image_create(
            item=item,
            content=image_bytes(size=(40, 32), color=(10 * index, 90, 200)),
            filename=f"{accession}.png",
            derivatives="now",
        )
        services.annotation_create(
            image=image,
            category="iconographic",
            motifs=[motif],
            region=(1, 1, 8, 8),
            meaning={"en": f"horns of {title}"},
        )
        items.append(item)
        images.append(image)
    passage = services.passage_create(
        source_work="Gazetteer of Khotan",
        section="Products",
        original_text="绸缎",
        english_translation="Silks.",
        published=True,
        items=items,
    )
    dataset = services.training_dataset_create(
        name="open-and-closed",
        resolution=32,
        items=[i.accession_number for i in items],
        include_unpublished=True,  # a curator's choice: the point is what visitors then see
    )
    # Freezing (crops at 32 px) is another test's subject; here the dataset only has to be
    # one anonymous users can read.
    TrainingDataset.objects.filter(pk=dataset.pk).update(frozen=True)
    generated = _approved_ai_images(items, passage)
    return {
        "public": items[0],
        "hidden": items[1:],
        "public_image": images[0],
        "hidden_images": images[1:],
        "passage": passage,
        "dataset": dataset,
        "generated": generated,
    }


def _approved_ai_images(items, passage) -> list:
    from generation.models import BaseModel, GeneratedImage, GenerationRequest

    base = BaseModel.objects.create(name="rows-only", path="/nonexistent", kind="diffusers")
    made = []
    for index, item in enumerate(items):
        request = GenerationRequest.objects.create(
            prompt="silk", final_prompt="silk", base_model=base, item=item, seeds=[1]
        )
        made.append(
            GeneratedImage.objects.create(
                request=request,
                file=stored_file_save(name=f"generation/tests/leak-{index}.png", content=b"x"),
                seed=1,
                condition="base",
                prompt="silk",
                width=8,
                height=8,
                item=item,
                approved=True,
            )
        )
    return made


def forbidden_strings(leaky) -> list[str]:
    strings = [HIDDEN_ACCESSION, HIDDEN_IN_COLLECTION, "Qwvx", "closedworks"]
    for item in leaky["hidden"]:
        strings += [f"/iiif/items/{item.pk}/", f"/items/{item.pk}/"]
    for image in leaky["hidden_images"]:
        strings += [f"/iiif/image/{image.pk}/", f'/iiif/image/{image.pk}"']
    return strings


def hidden_ids_in(data, leaky) -> list[str]:
    """References to hidden items or images anywhere in a JSON document (by key)."""
    item_ids = {i.pk for i in leaky["hidden"]}
    image_ids = {i.pk for i in leaky["hidden_images"]}
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "item" and value in item_ids:
                    found.append(f"item={value}")
                if key == "image" and value in image_ids:
                    found.append(f"image={value}")
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(data)
    return found


def anonymous_urls(leaky) -> list[str]:
    public, hidden = leaky["public"], leaky["hidden"]
    passage, dataset = leaky["passage"], leaky["dataset"]
    urls = [
        "/api/v1/",
        "/api/v1/collections/",
        "/api/v1/collections/closedworks/",
        "/api/v1/items/",
        "/api/v1/items/?q=ZQX",
        "/api/v1/items/?q=Qwvx",
        "/api/v1/items/?q=Qing",
        "/api/v1/items/?motif=ram-horn",
        "/api/v1/items/?category=iconographic",
        "/api/v1/items/?published=false",
        "/api/v1/items/?collection=closedworks",
        f"/api/v1/items/{public.pk}/",
        "/api/v1/items/export/?file_format=json",
        "/api/v1/items/export/?file_format=csv",
        "/api/v1/images/",
        f"/api/v1/images/{leaky['public_image'].pk}/",
        "/api/v1/annotations/",
        "/api/v1/annotations/?motif=ram-horn",
        "/api/v1/motifs/",
        "/api/v1/passages/",
        f"/api/v1/passages/{passage.pk}/",
        "/api/v1/passages/?q=Silks",
        "/api/v1/datasets/",
        f"/api/v1/datasets/{dataset.pk}/",
        f"/api/v1/datasets/{dataset.pk}/examples/",
        "/api/v1/generated-images/",
        "/iiif/collections",
        "/iiif/collections/openworks",
        "/iiif/collections/closedworks",
        f"/iiif/items/{public.pk}/manifest",
        "/",
        "/browse/",
        "/collections/openworks/",
        "/collections/closedworks/",
        "/categories/iconographic/",
        "/search/?q=ZQX",
        "/search/?q=Qwvx",
        "/search/?q=ram",
        f"/items/{public.pk}/",
    ]
    for item in hidden:
        urls += [
            f"/api/v1/items/{item.pk}/",
            f"/iiif/items/{item.pk}/manifest",
            f"/items/{item.pk}/",
        ]
    for image in leaky["hidden_images"]:
        urls += [f"/api/v1/images/{image.pk}/", f"/iiif/image/{image.pk}/info.json"]
    for generated in leaky["generated"][1:]:
        urls.append(f"/api/v1/generated-images/{generated.pk}/")
    return urls


def test_no_anonymous_response_names_an_unpublished_item(leaky):
    client = Client()
    forbidden = forbidden_strings(leaky)
    for url in anonymous_urls(leaky):
        response = client.get(url)
        assert response.status_code in (200, 404), (url, response.status_code)
        body = response.content.decode()
        if "q=" in url:  # the visitor's own search words are shown back to them
            body = body.replace(url.split("q=", 1)[1], "")
        leaked = [s for s in forbidden if s in body]
        assert not leaked, f"{url} shows {leaked}"
        if response.get("Content-Type", "").startswith(("application/json", "application/ld")):
            assert not hidden_ids_in(json.loads(body), leaky), url
    # A hidden record's address answers exactly like a missing one's.
    for hidden in leaky["hidden"]:
        for pattern in ("/api/v1/items/{}/", "/iiif/items/{}/manifest", "/items/{}/"):
            hidden_answer = client.get(pattern.format(hidden.pk))
            missing_answer = client.get(pattern.format(987654))
            assert hidden_answer.status_code == missing_answer.status_code == 404
            # The kiosk's 404 page carries a CSRF token (its language form), masked afresh
            # in every response: the rest must be byte for byte the same.
            assert unmasked(hidden_answer.content) == unmasked(missing_answer.content), pattern


def unmasked(body: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", body)


def test_visitors_see_public_links_only_curators_all(leaky, curator):
    """Passages, datasets and AI images keep what visitors should see (so the test above does
    not pass vacuously), and curators still see every link."""
    client = APIClient()
    public = leaky["public"]
    passage = client.get(f"/api/v1/passages/{leaky['passage'].pk}/").json()
    assert passage["items"] == ["PUB-OPEN-0001"]
    dataset = client.get(f"/api/v1/datasets/{leaky['dataset'].pk}/").json()
    assert dataset["selection"]["items"] == ["PUB-OPEN-0001"]
    assert dataset["train_count"] + dataset["validation_count"] == 1
    examples = client.get(f"/api/v1/datasets/{leaky['dataset'].pk}/examples/").json()
    assert [e["item"] for e in examples["results"]] == ["PUB-OPEN-0001"]
    generated = client.get("/api/v1/generated-images/").json()["results"]
    assert [g["item"] for g in generated] == [public.pk]
    kiosk = Client().get(f"/items/{public.pk}/").content.decode()
    assert "Gazetteer of Khotan" in kiosk and "Open shawl" in kiosk
    manifest = client.get(f"/iiif/items/{public.pk}/manifest").json()
    assert len(manifest["items"]) == 1

    client.force_login(curator)
    passage = client.get(f"/api/v1/passages/{leaky['passage'].pk}/").json()
    assert passage["items"] == sorted(["PUB-OPEN-0001", HIDDEN_ACCESSION, HIDDEN_IN_COLLECTION])
    dataset = client.get(f"/api/v1/datasets/{leaky['dataset'].pk}/").json()
    assert HIDDEN_ACCESSION in dataset["selection"]["items"]
    assert dataset["train_count"] + dataset["validation_count"] == 3
    assert client.get("/api/v1/generated-images/").json()["count"] == 3


def _same_answer(client, hidden_url: str, unknown_url: str) -> dict:
    hidden, unknown = client.get(hidden_url), client.get(unknown_url)
    assert (hidden.status_code, unknown.status_code) == (200, 200), (
        hidden_url,
        hidden.content,
        unknown.content,
    )
    assert hidden.json() == unknown.json(), hidden_url
    return hidden.json()


def test_filters_naming_hidden_records_answer_like_unknown_ones(leaky):
    client = APIClient()
    hidden_item = leaky["hidden"][0]
    hidden_image = leaky["hidden_images"][0]
    pairs = [
        (f"/api/v1/passages/?item={HIDDEN_ACCESSION}", "/api/v1/passages/?item=NO-SUCH-1"),
        (f"/api/v1/passages/?item={HIDDEN_IN_COLLECTION}", "/api/v1/passages/?item=NO-SUCH-1"),
        (f"/api/v1/images/?item={HIDDEN_ACCESSION}", "/api/v1/images/?item=NO-SUCH-1"),
        (f"/api/v1/annotations/?item={HIDDEN_ACCESSION}", "/api/v1/annotations/?item=NO-SUCH-1"),
        (f"/api/v1/annotations/?image={hidden_image.pk}", "/api/v1/annotations/?image=987654"),
        ("/api/v1/items/?collection=closedworks", "/api/v1/items/?collection=no-such"),
        ("/api/v1/images/?collection=closedworks", "/api/v1/images/?collection=no-such"),
        (
            f"/api/v1/generated-images/?item={hidden_item.pk}",
            "/api/v1/generated-images/?item=987654",
        ),
    ]
    for hidden_url, unknown_url in pairs:
        body = _same_answer(client, hidden_url, unknown_url)
        assert body["count"] == 0, hidden_url
    # The same filters still find published records.
    assert client.get("/api/v1/passages/?item=PUB-OPEN-0001").json()["count"] == 1
    image = leaky["public_image"].pk
    assert client.get(f"/api/v1/annotations/?image={image}").json()["count"] == 1
    assert client.get(f"/api/v1/generated-images/?item={leaky['public'].pk}").json()["count"] == 1
