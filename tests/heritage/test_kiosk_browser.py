"""The kiosk in Debian's Chromium (Playwright): browse, language switch, idle reset, pause.

Screenshots go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import new_context

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def page(browser):
    context = new_context(browser, viewport={"width": 1280, "height": 900}, has_touch=True)
    page = context.new_page()
    yield page
    context.close()


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"kiosk-{name}.png"), full_page=True)


def assert_targets_large(page) -> None:
    sizes = page.eval_on_selector_all(
        ".kiosk-button, .card, #idle-continue",
        "els => els.filter(e => e.offsetParent !== null).map(e => {"
        " const r = e.getBoundingClientRect();"
        " return [e.textContent.trim(), r.width, r.height]; })",
    )
    assert sizes
    small = [s for s in sizes if s[1] < 44 or s[2] < 44]
    assert not small, f"touch targets under 44px: {small}"


def test_browse_to_an_item(page, live_server, catalogue):
    page.goto(live_server.url + "/")
    assert page.locator(".attract-slide.is-current img").is_visible()
    shot(page, "attract")
    page.get_by_test_id("begin").click()
    page.wait_for_url("**/browse/")
    assert_targets_large(page)
    shot(page, "browse")
    page.get_by_test_id("collection-atlas").click()
    page.wait_for_url("**/collections/atlas/")
    assert page.get_by_test_id("item-card").count() == 3
    page.get_by_test_id("item-card").first.click()
    page.wait_for_url("**/items/*/")
    assert page.locator("h1").inner_text() == "Atlas pattern 0"
    # The deep-zoom viewer opens with the regions as outlines; choosing one outlines it.
    page.wait_for_function(
        "() => window.kioskViewer && window.kioskViewer.world.getItemCount() === 1"
        " && document.querySelectorAll('[data-testid=region]').length === 1",
    )
    region = page.get_by_test_id("region").first
    assert region.is_visible()
    toggle = page.locator(".region-toggle").first
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert "is-active" in (region.get_attribute("class") or "")
    assert_targets_large(page)
    shot(page, "item")
    # Search from the bar.
    page.get_by_test_id("nav-search").click()
    page.fill("#search-q", "comb")
    page.get_by_test_id("search-submit").click()
    # The results page loads after the click: wait for it, do not read the old page.
    expect(page.get_by_test_id("item-card")).to_have_count(1)


def test_language_switch_mirrors_for_uyghur(page, live_server, catalogue):
    page.goto(live_server.url + "/browse/")
    assert page.locator("html").get_attribute("dir") == "ltr"
    ltr_lang_x = page.locator(".kiosk-lang").bounding_box()["x"]
    page.get_by_test_id("lang-zh").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "zh"
    assert "艾德莱斯绸" in page.get_by_test_id("collection-atlas").inner_text()
    shot(page, "browse-zh")
    page.get_by_test_id("lang-ug").click()
    page.wait_for_load_state()
    html = page.locator("html")
    assert html.get_attribute("dir") == "rtl" and html.get_attribute("lang") == "ug"
    assert page.get_by_test_id("lang-ug").get_attribute("aria-pressed") == "true"
    # The layout mirrors: the language buttons move from the right edge to the left edge.
    rtl_lang_x = page.locator(".kiosk-lang").bounding_box()["x"]
    assert rtl_lang_x < ltr_lang_x
    nav_x = page.locator(".kiosk-nav").bounding_box()["x"]
    assert nav_x > rtl_lang_x
    assert "ئەتلەس" in page.get_by_test_id("collection-atlas").inner_text()
    shot(page, "browse-ug")
    page.goto(live_server.url + f"/items/{catalogue['items'][0].pk}/")
    # No Uyghur title: the English one, marked as English, with a note in Uyghur.
    title = page.locator("h1 bdi")
    assert title.inner_text() == "Atlas pattern 0" and title.get_attribute("lang") == "en"
    assert page.locator("h1 .fallback-note").get_attribute("lang") is None  # the page's: ug
    shot(page, "item-ug")


def test_idle_warning_continue_and_reset(page, live_server, catalogue, settings):
    settings.ATELIER_KIOSK_IDLE_SECONDS = 2
    settings.ATELIER_KIOSK_WARNING_SECONDS = 20
    # A paused fake clock: time moves only by run_for, so a slow machine cannot tick the
    # countdown between two reads (it showed 19 for 20 once on a loaded CI machine).
    start = datetime(2026, 1, 1, 9, 0, 0)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))
    page.goto(live_server.url + "/browse/")
    page.get_by_test_id("lang-zh").click()
    page.wait_for_load_state()
    dialog = page.locator("#idle-dialog")
    assert dialog.is_hidden()
    page.clock.run_for(2500)
    assert dialog.is_visible()
    assert int(page.locator("#idle-count").inner_text()) == 20  # WCAG 2.2.1: at least 20 s
    assert page.evaluate("document.activeElement.id") == "idle-continue"
    shot(page, "idle-warning")
    page.get_by_role("button", name="继续浏览").click()
    assert dialog.is_hidden()
    page.clock.run_for(1000)
    assert dialog.is_hidden() and "/browse/" in page.url
    page.clock.run_for(2000)
    assert dialog.is_visible()
    page.clock.run_for(10_000)
    assert dialog.is_visible() and 8 <= int(page.locator("#idle-count").inner_text()) <= 12
    resets = []
    page.on("request", lambda request: "reset=1" in request.url and resets.append(request.url))
    with page.expect_navigation():
        page.clock.run_for(11_000)
    page.wait_for_url(live_server.url + "/")
    # One reset: the countdown keeps ticking while the start page loads, and a second
    # location.assign aborted the first navigation (seen on a loaded CI machine).
    assert len(resets) == 1
    assert page.locator(".attract").is_visible()
    # The reset forgot the visitor's language.
    assert page.locator("html").get_attribute("lang") == "en"
    shot(page, "after-reset")


def test_attract_loop_can_be_paused(page, live_server, catalogue):
    page.clock.install()
    page.goto(live_server.url + "/")
    body = page.locator("body")
    assert body.get_attribute("data-slide") == "0"
    page.clock.run_for(6500)
    assert body.get_attribute("data-slide") == "1"
    pause = page.locator("#attract-pause")
    pause.click()
    assert pause.get_attribute("aria-pressed") == "true"
    page.clock.run_for(20_000)
    assert body.get_attribute("data-slide") == "1"
    pause.click()
    page.clock.run_for(6500)
    assert body.get_attribute("data-slide") == "2"
