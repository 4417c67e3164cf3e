"""Every kiosk page in English, Chinese and Uyghur in Debian's Chromium: the page's language
and direction, every English fallback marked lang="en", axe-core without a violation, the
on-screen keyboard and chips, facets, tap-anywhere attract screen, and no request leaving the
site (all others are aborted and listed)."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.a11y import axe_violations
from tests.conftest import local_only_page, new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

ALL_IMPACTS = ("minor", "moderate", "serious", "critical")
LANDSCAPE = {"width": 1920, "height": 1080}
PORTRAIT = {"width": 1080, "height": 1920}

# Text nodes with Latin words whose nearest lang="" is not English (or "zxx": codes, URIs).
UNMARKED_LATIN = """() => {
  const out = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walk.nextNode()) {
    const node = walk.currentNode, el = node.parentElement;
    if (!el || el.closest('script, style, noscript')) continue;
    if (!/[A-Za-z]{2,}/.test(node.textContent)) continue;
    const lang = el.closest('[lang]').getAttribute('lang');
    if (lang === 'en' || lang === 'zxx') continue;
    out.push(lang + ': ' + node.textContent.trim().slice(0, 60));
  }
  return out;
}"""


def kiosk_page(browser, live_server, lang, viewport=LANDSCAPE):
    context = new_context(browser, viewport=viewport, has_touch=True)
    page = local_only_page(context, live_server, lang)
    return page


@pytest.mark.parametrize("lang", ["en", "zh", "ug"])
def test_every_kiosk_page_in_each_language(browser, live_server, catalogue, lang):
    item = catalogue["items"][0]
    page = kiosk_page(browser, live_server, lang)
    try:
        for url in (
            "/",
            "/browse/",
            "/browse/?category=iconographic#objects",
            "/search/",
            "/search/?q=comb",
            "/collections/atlas/",
            "/categories/iconographic/",
            f"/items/{item.pk}/",
            "/no-such-page/",
        ):
            response = page.goto(live_server.url + url)
            assert response.status == (404 if url == "/no-such-page/" else 200), url
            if url.startswith("/items/"):
                page.wait_for_function(
                    "() => window.kioskViewer && window.kioskViewer.world.getItemCount() === 1"
                )
            html = page.locator("html")
            assert html.get_attribute("lang") == lang, url
            assert html.get_attribute("dir") == ("rtl" if lang == "ug" else "ltr"), url
            if lang != "en":
                assert page.evaluate(UNMARKED_LATIN) == [], url
            # The idle reset is on every page but the attract screen (error pages included).
            assert page.locator("#kiosk-config").count() == 1, url
            assert axe_violations(page, impacts=ALL_IMPACTS) == [], url
        assert page.blocked == [], f"requests outside the site: {page.blocked}"
    finally:
        page.context.close()


def test_fallbacks_are_marked_and_noted(browser, live_server, catalogue):
    page = kiosk_page(browser, live_server, "ug")
    try:
        page.goto(f"{live_server.url}/items/{catalogue['items'][0].pk}/")
        fallbacks = page.locator("bdi.fallback")
        assert fallbacks.count() >= 3  # title, description, meaning, passage reading ...
        for i in range(fallbacks.count()):
            assert fallbacks.nth(i).get_attribute("lang") == "en"
            assert fallbacks.nth(i).get_attribute("dir") == "ltr"
        assert page.locator(".fallback-note").first.inner_text().startswith("(تېخى")
        # The collection's own Uyghur title is not a fallback.
        page.goto(f"{live_server.url}/browse/")
        title = page.get_by_test_id("collection-atlas").locator("bdi").first
        assert title.get_attribute("lang") == "ug" and "fallback" not in (
            title.get_attribute("class") or ""
        )
    finally:
        page.context.close()


def test_touch_anywhere_keyboard_chips_and_facets(browser, live_server, catalogue):
    page = kiosk_page(browser, live_server, "en", PORTRAIT)
    try:
        page.goto(live_server.url + "/")
        # A touch anywhere on the attract screen begins.
        page.touchscreen.tap(300, 1500)
        page.wait_for_url("**/browse/")
        # Browse: cards have pictures; a facet narrows the objects.
        assert page.locator("[data-testid=collection-atlas] img").count() == 1
        assert page.get_by_test_id("item-card").count() == 3
        page.get_by_test_id("facet-motif-comb").click()
        page.wait_for_url("**motif=comb**")
        assert page.get_by_test_id("item-card").count() == 1
        assert page.get_by_test_id("facet-motif-comb").get_attribute("aria-current") == "true"
        page.get_by_test_id("facet-clear").click()
        # The unfiltered page loads after the click: wait for it, do not read the old page.
        expect(page.get_by_test_id("item-card")).to_have_count(3)
        # Search with the on-screen keyboard only.
        page.get_by_test_id("nav-search").click()
        page.wait_for_url("**/search/")
        for key in "comb":
            page.locator(f".osk-key[data-key='{key}']").click()
        page.locator(".osk-key[data-key='x']").click()
        page.locator(".osk-key[data-action=backspace]").click()
        assert page.locator("#search-q").input_value() == "comb"
        page.get_by_test_id("search-submit").click()
        expect(page.get_by_test_id("item-card")).to_have_count(1)
        # Or by a chip, without typing.
        page.get_by_test_id("search-chip").filter(has_text="tassel").click()
        page.wait_for_url("**motif=tassel**")
        assert page.get_by_test_id("item-card").count() == 2
        assert page.blocked == []
    finally:
        page.context.close()


def test_uyghur_keyboard_types_uyghur(browser, live_server, catalogue):
    page = kiosk_page(browser, live_server, "ug")
    try:
        page.goto(live_server.url + "/search/")
        for letter in "ئەتلەس":
            page.locator(f".osk-key[data-key='{letter}']").click()
        assert page.locator("#search-q").input_value() == "ئەتلەس"
        assert page.locator(".osk").get_attribute("dir") == "rtl"
    finally:
        page.context.close()


@pytest.mark.parametrize(
    ("lang", "family"), [("en", "Noto Sans"), ("zh", "Noto Sans SC"), ("ug", "Noto Sans Arabic")]
)
def test_the_shipped_fonts_draw_each_language(browser, live_server, catalogue, lang, family):
    page = kiosk_page(browser, live_server, lang)
    try:
        page.goto(live_server.url + "/browse/")
        loaded = page.evaluate(
            """async () => { await document.fonts.ready;
              return [...document.fonts].filter(f => f.status === 'loaded')
                .map(f => f.family.replace(/["']/g, '')); }"""
        )
        assert family in loaded, loaded
        # Served from this site (vendor/fonts), never a local() or a CDN font.
        fonts = page.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => n.endsWith('.woff2'))"
        )
        assert fonts and all(f.startswith(live_server.url + "/static/vendor/fonts/") for f in fonts)
        assert page.blocked == []
    finally:
        page.context.close()
