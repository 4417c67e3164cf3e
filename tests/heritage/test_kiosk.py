"""Kiosk pages rendered by Django: visibility, languages, AI companions labelled and approved."""

from __future__ import annotations

import pytest
from django.apps import apps

from archives.services import stored_file_save
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


def make_generated(item, approved: bool, prompt: str, condition: str = "lora", passage=None):
    """A GeneratedImage row as the generation app would leave it (skipped if that app changed)."""
    try:
        generated_model = apps.get_model("generation", "GeneratedImage")
        base_model = apps.get_model("generation", "BaseModel")
        request_model = apps.get_model("generation", "GenerationRequest")
    except LookupError:
        pytest.skip("the generation app has no GeneratedImage model")
    base, _ = base_model.objects.get_or_create(
        name="demo", defaults={"path": "/nowhere", "kind": "diffusers"}
    )
    request = request_model.objects.create(prompt=prompt, base_model=base, item=item)
    return generated_model.objects.create(
        request=request,
        file=stored_file_save(name="gen/g.png", content=image_bytes(), content_type="image/png"),
        seed=1,
        condition=condition,
        prompt=prompt,
        approved=approved,
        item=item,
        passage=passage,
    )


def test_pages_render_published_records_only(client, catalogue):
    attract = client.get("/")
    assert attract.status_code == 200 and b"attract-slide" in attract.content
    browse = client.get("/browse/").content.decode()
    assert "Atlas silk" in browse and "Hidden" not in browse
    assert "/categories/directional/" in browse
    listing = client.get("/collections/atlas/").content.decode()
    assert "Atlas pattern 0" in listing and "Atlas pattern 3" not in listing
    assert client.get("/collections/hidden/").status_code == 404
    assert client.get(f"/items/{catalogue['items'][3].pk}/").status_code == 404
    category = client.get("/categories/directional/").content.decode()
    assert "Atlas pattern 1" in category and "Atlas pattern 0" not in category
    assert client.get("/categories/poetic/").status_code == 404
    found = client.get("/search/", {"q": "流苏"}).content.decode()  # motif label in Chinese
    assert "Atlas pattern 0" in found and "Atlas pattern 1" not in found


def test_item_page_shows_regions_annotations_and_passages(client, catalogue):
    html = client.get(f"/items/{catalogue['items'][0].pk}/").content.decode()
    # The viewer's regions in image pixels; the plain picture (no script) in percentages.
    assert '"category": "iconographic", "x": 2, "y": 2, "w": 10, "h": 10' in html
    assert "left:5.0%;top:6.25%;width:25.0%;height:31.25%" in html  # (2,2,10,10) of 40x32
    assert "/static/vendor/openseadragon/openseadragon.min.js" in html
    assert "meaning 0" in html and "tassel" in html
    assert "山高水长" in html
    assert "AI-generated" not in html


def test_language_switch_and_fallback(client, catalogue):
    item = catalogue["items"][0]
    client.post("/i18n/setlang/", {"language": "zh", "next": "/"})
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert '<html lang="zh" dir="ltr">' in html and "图案 0" in html and "流苏" in html
    client.post("/i18n/setlang/", {"language": "ug", "next": "/"})
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert '<html lang="ug" dir="rtl">' in html
    assert "Atlas pattern 0" in html  # no Uyghur title: English fallback
    assert "ئىزدەش" in html  # the interface itself is in Uyghur


def test_only_approved_lora_companions_are_shown_labelled_and_captioned(client, catalogue):
    item = catalogue["items"][0]
    approved = make_generated(item, True, "[U], silk pattern with tassels")
    hidden = make_generated(item, False, "rejected attempt")
    base = make_generated(item, True, "base model attempt", condition="base")
    from_passage = make_generated(
        item, True, "[U], high mountains and a long river", passage=catalogue["passage"]
    )
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert "AI-generated companions" in html
    assert html.count('class="ai-badge"') == 2
    # Captions come from the object and the passage, never from the prompt or its trigger.
    assert "[U]" not in html and "silk pattern with tassels" not in html
    assert "rejected attempt" not in html and "base model attempt" not in html
    assert "High mountains, long rivers." in html
    client.post("/i18n/setlang/", {"language": "zh", "next": "/"})
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert html.count("人工智能生成") >= 2 and "图案 0" in html
    assert client.get(f"/companions/{approved.pk}.img")["Content-Type"] == "image/png"
    assert client.get(f"/companions/{from_passage.pk}.img").status_code == 200
    assert client.get(f"/companions/{hidden.pk}.img").status_code == 404
    assert client.get(f"/companions/{base.pk}.img").status_code == 404


def test_passages_in_the_visitors_language(client, catalogue):
    from heritage import services

    item, passage = catalogue["items"][0], catalogue["passage"]
    client.post("/i18n/setlang/", {"language": "ug", "next": "/"})
    html = client.get(f"/items/{item.pk}/").content.decode()
    # No Uyghur reading yet: the English one, marked as English and as a fallback.
    assert '<bdi lang="en" dir="ltr" class="fallback">High mountains, long rivers.</bdi>' in html
    services.passage_update(passage=passage, translations={"ug": "تاغلار ئېگىز، دەريالار ئۇزۇن."})
    html = client.get(f"/items/{item.pk}/").content.decode()
    assert '<bdi lang="ug" dir="rtl">تاغلار ئېگىز، دەريالار ئۇزۇن.</bdi>' in html
    assert "High mountains, long rivers." not in html


def test_error_pages_are_the_kiosks_localized_with_idle_reset(client, catalogue):
    client.post("/i18n/setlang/", {"language": "ug", "next": "/"})
    response = client.get("/items/999999/")
    assert response.status_code == 404
    html = response.content.decode()
    assert '<html lang="ug" dir="rtl">' in html
    assert "kiosk.js" in html and 'id="kiosk-config"' in html and "kiosk-bar" in html
    assert "Not found" not in html
    staff = client.get("/evaluation/nothing-here/")
    assert staff.status_code == 404 and "kiosk-config" not in staff.content.decode()


def test_idle_settings_reach_the_page(client, catalogue, settings):
    settings.ATELIER_KIOSK_IDLE_SECONDS = 7
    settings.ATELIER_KIOSK_WARNING_SECONDS = 5  # below the WCAG minimum: raised to 20
    html = client.get("/browse/").content.decode()
    assert '{"idle": 7, "warning": 20, "attract": false, "rtl": false}' in html
    reset = client.get("/?reset=1")
    assert reset.status_code == 302 and reset["Location"] == "/"
