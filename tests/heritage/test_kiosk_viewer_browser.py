"""The kiosk item page in Debian's Chromium at real kiosk sizes: deep zoom (OpenSeadragon on
our IIIF Image API), annotations flown to and outlined, numbers never hidden, no tint, and no
request leaving the site. Screenshots of the item page with a region in view go to docs/img/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from heritage import services
from tests.conftest import local_only_page, new_context
from tests.heritage.conftest import image_bytes

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
LANDSCAPE = {"width": 1920, "height": 1080}
PORTRAIT = {"width": 1080, "height": 1920}


def painting() -> bytes:
    """A 1200x900 'silk' with motifs where the regions are, so zoomed tiles differ."""
    import io

    image = Image.new("RGB", (1200, 900), (178, 28, 46))
    draw = ImageDraw.Draw(image)
    for x in range(0, 1200, 150):
        draw.rectangle([x, 0, x + 60, 900], fill=(238, 186, 38))
    draw.ellipse([840, 600, 1000, 760], fill=(32, 42, 112))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


@pytest.fixture
def kiosk_item(transactional_db):
    silk = services.collection_create(
        slug="atlas", title={"en": "Atlas silk", "zh": "艾德莱斯绸", "ug": "ئەتلەس"}, published=True
    )
    comb = services.motif_term_get_or_create(
        slug="comb", label={"en": "comb", "zh": "梳子", "ug": "تاغاق"}
    )
    tassel = services.motif_term_get_or_create(slug="tassel", label={"en": "tassel"})
    item = services.item_create(
        collection=silk,
        accession_number="ATL-100",
        title={"en": "Atlas silk with combs", "zh": "梳子纹艾德莱斯绸"},  # no Uyghur title
        description={"en": "Warp-dyed silk.", "zh": "扎经染色丝绸。", "ug": "ئەتلەس يىپەك."},
        credit_line={"en": "Demo museum"},
        rights="http://rightsstatements.org/vocab/NoC-US/1.0/",
        published=True,
    )
    image = services.item_image_create(
        item=item, content=painting(), filename="silk.jpg", derivatives="now"
    )
    annotations = [
        # Two regions that share their top-left corner: their numbers must not hide each other.
        services.annotation_create(
            image=image,
            category="iconographic",
            motifs=[comb],
            region=(60, 60, 300, 500),
            meaning={
                "en": "A column of combs.",
                "zh": "一列梳子纹。",
                "ug": "بىر قاتار تاغاق نەقىشى.",
            },
        ),
        services.annotation_create(
            image=image,
            category="cultural_semiotic",
            motifs=[comb],
            region=(60, 60, 120, 120),
            meaning={"en": "A comb keeps the household in order."},  # English only
        ),
        services.annotation_create(
            image=image,
            category="directional",
            motifs=[tassel],
            region=(840, 600, 160, 160),
            meaning={"en": "The tassel points down the warp.", "zh": "流苏沿经向向下。"},
        ),
    ]
    services.passage_create(
        source_work="Gazetteer",
        section="Customs",
        original_text="山高水长",
        english_translation="High mountains, long rivers.",
        published=True,
        items=[item],
    )
    other = services.item_create(
        collection=silk, accession_number="ATL-101", title={"en": "Plain silk"}, published=True
    )
    services.item_image_create(
        item=other, content=image_bytes(size=(64, 48)), filename="p.png", derivatives="now"
    )
    return {"item": item, "annotations": annotations, "image": image}


def new_page(browser, live_server, viewport, lang="en"):
    context = new_context(browser, viewport=viewport, has_touch=True)
    page = local_only_page(context, live_server, lang)
    return page


def wait_for_viewer(page) -> None:
    page.wait_for_function(
        "() => window.kioskViewer && window.kioskViewer.world.getItemCount() === 1"
        " && window.kioskViewer.world.getItemAt(0).getFullyLoaded()"
        " && document.querySelectorAll('.region-box[id^=region-]').length > 0",
    )


def settle(page) -> None:
    page.wait_for_function(
        "() => !window.kioskViewer.viewport.getZoom(false) === false &&"
        " Math.abs(window.kioskViewer.viewport.getZoom(false) -"
        " window.kioskViewer.viewport.getZoom(true)) < 1e-3",
    )
    page.wait_for_timeout(150)


# Region numbers inside the viewer that something else covers (with what covers them).
HIDDEN_NUMBERS = """() => {
  const v = document.getElementById('viewer').getBoundingClientRect();
  const out = [];
  for (const b of document.querySelectorAll('.region-box[id^=region-] .region-number')) {
    const r = b.getBoundingClientRect();
    if (r.top < v.top || r.bottom > v.bottom || r.left < v.left || r.right > v.right) continue;
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    if (!(hit === b || b.contains(hit))) {
      out.push(b.textContent + ' under ' + (hit ? hit.outerHTML.slice(0, 80) : 'nothing'));
    }
  }
  return out;
}"""


def zoom(page) -> float:
    return page.evaluate("window.kioskViewer.viewport.getZoom(true)")


def inside(box, outer, slack: float = 1.0) -> bool:
    return (
        box["x"] >= outer["x"] - slack
        and box["y"] >= outer["y"] - slack
        and box["x"] + box["width"] <= outer["x"] + outer["width"] + slack
        and box["y"] + box["height"] <= outer["y"] + outer["height"] + slack
    )


@pytest.mark.parametrize("viewport", [LANDSCAPE, PORTRAIT], ids=["landscape", "portrait"])
def test_deep_zoom_and_annotations_in_view(browser, live_server, kiosk_item, viewport):
    page = new_page(browser, live_server, viewport)
    try:
        page.goto(f"{live_server.url}/items/{kiosk_item['item'].pk}/")
        wait_for_viewer(page)
        # Tiles come from our own IIIF service (level1 region requests, not just one JPEG).
        tiles = page.evaluate(
            "() => performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => n.includes('/iiif/image/'))"
        )
        assert any("/info.json" in t for t in tiles)
        home = zoom(page)
        page.get_by_test_id("zoom-in").click()
        settle(page)
        zoomed_in = zoom(page)
        assert zoomed_in > home * 1.3
        # Drag moves the picture (touch drag and pinch are OpenSeadragon's gestures too).
        center = (
            "(() => { const c = window.kioskViewer.viewport.getCenter(true);"
            " return [c.x, c.y]; })()"
        )
        before = page.evaluate(center)
        frame = page.get_by_test_id("viewer").bounding_box()
        x, y = frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + 150, y + 80, steps=8)
        page.mouse.up()
        settle(page)
        after = page.evaluate(center)
        assert after[0] < before[0] and after[1] < before[1], (before, after)
        page.get_by_test_id("zoom-out").click()
        settle(page)
        page.get_by_test_id("zoom-out").click()
        settle(page)
        assert zoom(page) < zoomed_in
        page.get_by_test_id("zoom-home").click()
        settle(page)

        # Portrait: one column, the viewer above the texts, wide as the screen.
        viewer_box = page.get_by_test_id("viewer").bounding_box()
        if viewport is PORTRAIT:
            assert viewer_box["width"] > 0.9 * (viewport["width"] - 120)
        # The header stays on screen while the page scrolls.
        page.mouse.wheel(0, 2000)
        # mouse.wheel does not wait for the scroll; a loaded machine may take a while.
        page.wait_for_function("() => window.scrollY > 0")
        page.wait_for_timeout(200)
        bar = page.locator(".kiosk-bar").bounding_box()
        assert bar["y"] == 0

        for number, annotation in enumerate(kiosk_item["annotations"], start=1):
            button = page.get_by_test_id("region-button").nth(number - 1)
            button.scroll_into_view_if_needed()
            button.click()
            settle(page)
            assert button.get_attribute("aria-pressed") == "true"
            region = page.locator(f"#region-{annotation.pk}")
            assert "is-active" in region.get_attribute("class")
            box = region.bounding_box()
            viewer_box = page.get_by_test_id("viewer").bounding_box()
            screen = {"x": 0, "y": 0, **viewport}
            assert inside(box, viewer_box), (number, box, viewer_box)
            assert inside(box, screen), (number, box, viewport)
            # The region is big in the frame, not a speck: it was flown to.
            assert box["width"] * box["height"] > 0.15 * viewer_box["width"] * viewer_box["height"]
            # Outlines only: no tint over the artwork.
            background = region.evaluate("e => getComputedStyle(e).backgroundColor")
            assert background in ("rgba(0, 0, 0, 0)", "transparent")
            # Every number on screen is on top (not covered by another region or badge).
            hidden = page.evaluate(HIDDEN_NUMBERS)
            assert not hidden, f"region numbers hidden: {hidden}"
        assert page.blocked == [], f"requests outside the site: {page.blocked}"
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh", "ug"])
def test_screenshots_with_a_region_in_view(browser, live_server, kiosk_item, lang):
    # The pictures for docs/kiosk.md show the page fully translated (fallbacks have own tests).
    item = kiosk_item["item"]
    services.item_update(item=item, title={**item.title, "ug": "تاغاق نەقىشلىك ئەتلەس"})
    second = kiosk_item["annotations"][1]
    services.annotation_update(
        annotation=second,
        meaning={
            **second.meaning,
            "zh": "梳子纹象征持家有方。",
            "ug": "تاغاق رەتلىك ئائىلىنىڭ بەلگىسى.",
        },
    )
    page = new_page(browser, live_server, LANDSCAPE, lang)
    try:
        page.goto(f"{live_server.url}/items/{kiosk_item['item'].pk}/")
        wait_for_viewer(page)
        page.get_by_test_id("region-button").nth(0).click()
        settle(page)
        page.evaluate("document.fonts.ready.then(() => true)")
        page.wait_for_timeout(300)
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(DOCS_IMG / f"kiosk-item-{lang}.png"))
        assert page.blocked == []
    finally:
        page.context.close()
