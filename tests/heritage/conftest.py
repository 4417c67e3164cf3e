"""Fixtures of the heritage tests: small real images and a tiny catalogue."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from heritage import services
from heritage.models import SemioticAnnotation


def image_bytes(
    size=(48, 32), mode="RGB", fmt="PNG", color=None, exif_orientation: int | None = None
) -> bytes:
    if color is None:
        color = {
            "RGB": (200, 40, 30),
            "RGBA": (0, 90, 200, 128),
            "L": 120,
            "CMYK": (0, 80, 80, 10),
        }.get(mode, 1)
    if mode == "I;16":
        image = Image.new("I;16", size)
        image.putdata([(i * 997) % 65535 for i in range(size[0] * size[1])])
    elif mode == "P":
        image = Image.new("RGB", size, (10, 200, 10)).convert("P", palette=Image.Palette.ADAPTIVE)
        image.info["transparency"] = 0
    else:
        image = Image.new(mode, size, color)
    out = io.BytesIO()
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif
    image.save(out, fmt, **kwargs)
    return out.getvalue()


@pytest.fixture(autouse=True)
def empty_response_cache():
    """The catalogue version restarts with every test database: start each test uncached."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def catalogue(db):
    """Two collections (one unpublished), items, images with derivatives, annotations."""
    atlas = services.collection_create(
        slug="atlas", title={"en": "Atlas silk", "zh": "艾德莱斯绸", "ug": "ئەتلەس"}, published=True
    )
    hidden = services.collection_create(slug="hidden", title={"en": "Hidden"}, published=False)
    tassel = services.motif_term_get_or_create(slug="tassel", label={"en": "tassel", "zh": "流苏"})
    comb = services.motif_term_get_or_create(slug="comb", label={"en": "comb", "zh": "梳子"})
    items = []
    categories = ["iconographic", "directional", "cultural_semiotic", "iconographic"]
    for index, category in enumerate(categories):
        item = services.item_create(
            collection=atlas,
            accession_number=f"ATL-{index:03d}",
            title={"en": f"Atlas pattern {index}", "zh": f"图案 {index}"},
            description={"en": "Warp-dyed silk."},
            rights="http://rightsstatements.org/vocab/InC/1.0/",
            credit_line={"en": "Demo museum"},
            published=index != 3,
        )
        image = services.item_image_create(
            item=item,
            content=image_bytes(size=(40 + index * 8, 32)),
            filename=f"atl{index}.png",
            derivatives="now",
        )
        services.annotation_create(
            image=image,
            category=category,
            motifs=[tassel] if index % 2 == 0 else [comb],
            region=(2, 2, 10, 10),
            meaning={"en": f"meaning {index}"},
        )
        items.append(item)
    secret = services.item_create(
        collection=hidden,
        accession_number="HID-001",
        title={"en": "Secret"},
        published=True,
    )
    passage = services.passage_create(
        source_work="Gazetteer of Yarkand",
        section="Geography",
        original_text="山高水长",
        english_translation="High mountains, long rivers.",
        approved_prompt="high mountains and a long river",
        published=True,
        items=[items[0]],
    )
    return {
        "atlas": atlas,
        "hidden": hidden,
        "items": items,
        "secret": secret,
        "tassel": tassel,
        "comb": comb,
        "passage": passage,
        "category": SemioticAnnotation.Category,
    }
