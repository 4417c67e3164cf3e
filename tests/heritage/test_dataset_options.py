"""Dataset build options (issue 20): buckets, region examples, textile tiles, masked regions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from PIL import Image

from archives.services import stored_file_read
from heritage import services
from heritage.selectors import dataset_examples
from tests.generation.diffusion.test_buckets import banded

pytestmark = pytest.mark.django_db
INCLUDE = {"include_unpublished": True, "include_uncaptioned": True}


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def scrolls():
    """A 1:4 hanging scroll with an annotated tassel region, a 5:1 handscroll, a large
    textile, a thumbnail too small to train on and a 15:1 strip no bucket takes."""
    collection = services.collection_create(slug="scrolls", title={"en": "Scrolls"})
    tassel = services.motif_term_get_or_create(slug="tassel", label={"en": "tassel"})
    fence = services.motif_term_get_or_create(slug="fence", label={"en": "fence pattern"})
    images = {}
    for number, (name, image) in enumerate(
        [
            ("hanging", banded(200, 800)),
            ("hand", banded(1000, 200)),
            ("textile", Image.fromarray(np.full((300, 300, 3), 120, np.uint8))),
            ("thumb", banded(6, 6)),
            ("strip", banded(1500, 100)),
        ]
    ):
        item = services.item_create(
            collection=collection,
            accession_number=f"SCR-{number}",
            title={"en": name},
        )
        images[name] = services.item_image_create(
            item=item, content=png(image), filename=f"{name}.png", derivatives="none"
        )
    services.annotation_create(
        image=images["hanging"], category="iconographic", motifs=[tassel], region=(50, 40, 100, 120)
    )
    services.annotation_create(
        image=images["hanging"], category="cultural_semiotic", motifs=[fence], region=(0, 600, 6, 6)
    )
    return images


def test_regions_tiles_and_notes(scrolls):
    dataset = services.training_dataset_create(
        name="scrolls",
        collections=["scrolls"],
        include_unpublished=True,
        include_uncaptioned=True,
        resolution=64,
        validation_fraction=0,
        region_examples=True,
        region_margin=0.1,
        tiles_per_image=3,
        masked_loss=True,
        unmasked_weight=0.2,
    )
    examples = list(dataset_examples(dataset))
    kinds = sorted((e.image.original_filename, e.kind) for e in examples)
    assert kinds == [
        ("hand.png", "tile"),
        ("hand.png", "tile"),
        ("hand.png", "tile"),
        ("hand.png", "whole"),
        ("hanging.png", "region"),
        ("hanging.png", "tile"),
        ("hanging.png", "tile"),
        ("hanging.png", "tile"),
        ("hanging.png", "whole"),
        ("textile.png", "tile"),
        ("textile.png", "tile"),
        ("textile.png", "tile"),
        ("textile.png", "whole"),
    ]
    # the region example: its own motif and category after the trigger, its box with margin
    region = next(e for e in examples if e.kind == "region")
    assert region.caption == "[U], tassel, iconographic motif"
    assert region.box == [40, 28, 120, 144]
    # everything left out is named: the thumbnail, the strip's whole picture, the tiny region
    notes = " ".join(dataset.build_notes)
    assert "SCR-3 (thumb.png) is 6x6 px, smaller than the smallest bucket side" in notes
    assert "SCR-4 (strip.png) is 1500x100 px" in notes and "beyond the bucket limits" in notes
    assert "SCR-0 (hanging.png) region of annotation" in notes and "7x8 px" in notes

    frozen = services.training_dataset_freeze(dataset=dataset)
    by_kind = {
        (e.image.original_filename, e.kind): e for e in dataset_examples(frozen) if e.part <= 1
    }
    hanging = by_kind[("hanging.png", "whole")]
    assert hanging.bucket == "32x128" and hanging.crop_box == [0, 0, 200, 800]  # all of it
    hand = by_kind[("hand.png", "whole")]
    assert hand.bucket == "136x24" and hand.crop_box[2] == 1000  # its whole width
    crop = Image.open(io.BytesIO(stored_file_read(hanging.crop)))
    assert crop.size == (32, 128)
    # masked loss regions in crop pixels: the tassel (200x800 -> 32x128 is a scale of 0.16)
    assert [50 * 0.16, 40 * 0.16, 100 * 0.16, 120 * 0.16] == pytest.approx(
        hanging.mask_regions[0], abs=1
    )
    # a tile keeps the cloth at its own scale: 64 px of the original, not shrunk
    tile = next(e for e in dataset_examples(frozen) if e.kind == "tile")
    assert tile.box[2:] == [64, 64] and tile.bucket == "64x64"
    # a new version keeps the options and the examples' kinds
    draft = services.training_dataset_new_version(dataset=frozen)
    assert (draft.region_examples, draft.tiles_per_image, draft.masked_loss) == (True, 3, True)
    assert draft.examples.filter(kind="region").count() == 1


def test_the_dataset_page_shows_each_examples_bucket_and_crop(scrolls, client):
    from tests.conftest import make_user

    dataset = services.training_dataset_create(
        name="page", collections=["scrolls"], resolution=64, region_examples=True, **INCLUDE
    )
    client.force_login(make_user("curator-page", "curator"))
    url = f"/curator/catalogue/datasets/{dataset.pk}/"
    draft = client.get(url).content.decode()
    assert "<strong>32x128</strong> px from 200x800 at (0, 0) of 200x800" in draft  # whole
    assert "annotated region · <strong>" in draft
    assert "SCR-3 (thumb.png) is 6x6 px" in draft  # the build notes
    frozen = services.training_dataset_freeze(dataset=dataset)
    page = client.get(f"/curator/catalogue/datasets/{frozen.pk}/").content.decode()
    assert "<strong>32x128</strong> px from 200x800 at (0, 0) of 200x800" in page


def test_regions_share_their_images_split(scrolls):
    dataset = services.training_dataset_create(
        name="split",
        collections=["scrolls"],
        include_unpublished=True,
        include_uncaptioned=True,
        resolution=64,
        validation_fraction=0.5,
        region_examples=True,
        tiles_per_image=2,
        seed=3,
    )
    splits: dict[int, set[str]] = {}
    for example in dataset_examples(dataset):
        splits.setdefault(example.image_id, set()).add(example.split)
    assert all(len(s) == 1 for s in splits.values())
    assert {"train", "validation"} == set().union(*splits.values())


def test_nothing_usable_is_refused_by_name(scrolls):
    with pytest.raises(ValidationError, match=r"SCR-3 \(thumb\.png\) is 6x6 px"):
        services.training_dataset_create(name="t", items=["SCR-3"], resolution=64, **INCLUDE)
    with pytest.raises(ValidationError, match="unmasked_weight"):
        services.training_dataset_create(name="t", items=["SCR-0"], unmasked_weight=2, **INCLUDE)


def test_the_api_takes_the_build_options(scrolls):
    from rest_framework.test import APIClient

    from tests.conftest import make_user

    api = APIClient()
    api.force_authenticate(make_user("curator-api", "curator"))
    body = {
        "name": "api",
        "collections": ["scrolls"],
        "resolution": 64,
        "region_examples": True,
        "masked_loss": True,
        "unmasked_weight": 0.3,
        **INCLUDE,
    }
    response = api.post("/api/v1/datasets/", body, format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert (data["region_examples"], data["masked_loss"], data["unmasked_weight"]) == (
        True,
        True,
        0.3,
    )
    assert any("thumb.png" in note for note in data["build_notes"])
    examples = api.get(data["examples_url"]).json()["results"]
    assert {e["kind"] for e in examples} == {"whole", "region"}
    refused = api.post("/api/v1/datasets/", {**body, "unmasked_weight": 3}, format="json")
    assert refused.status_code == 400 and "unmasked_weight" in refused.json()
