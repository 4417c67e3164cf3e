"""The expert form as an expert meets it on a 1024x768 tablet and a 390x844 phone: a whole
image rated with the keyboard without scrolling, an incomplete image refused, one column on a
phone, and axe-core on the expert pages in English, Chinese and Uyghur."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evaluation import services
from evaluation.models import Assignment, Dimension, Panel, Rating
from tests.a11y import axe_violations
from tests.conftest import local_only_page, make_user, new_context
from tests.evaluation.conftest import make_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TABLET = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}
ALL_IMPACTS = ("minor", "moderate", "serious", "critical")


@pytest.fixture
def study(transactional_db):
    world = make_world()
    expert = make_user("rater1", "expert")
    panel = Panel.objects.create(name="art practitioners")
    panel.members.set([expert])
    study = services.study_create(
        title="Base vs LoRA",
        panel=panel,
        generated_images=world.images,
        reference_images=[world.reference],
        seed=42,
    )
    study.expert = expert
    return study


def logged_in(browser, live_server, user, viewport, lang="en"):
    context = new_context(browser, viewport=viewport, has_touch=viewport is PHONE)
    page = local_only_page(context, live_server, lang)
    page.goto(f"{live_server.url}/accounts/login/?next=/evaluation/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-" + user.username)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return page


def item_at(study, position: int):
    return Assignment.objects.get(study=study, expert=study.expert, position=position).item


def test_a_whole_image_rated_with_the_keyboard_on_one_tablet_screen(browser, live_server, study):
    page = logged_in(browser, live_server, study.expert, TABLET)
    try:
        page.goto(f"{live_server.url}/evaluation/studies/{study.pk}/rate/1/")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "expert-form-1024x768.png"))
        # Everything needed to rate the image is on the first screen.
        for selector in ["img[src*='/evaluation/img/']", "#eval-submit"] + [
            f"#dim-{d}" for d in Dimension.values
        ]:
            box = page.locator(selector).bounding_box()
            assert box["y"] >= 0 and box["y"] + box["height"] <= TABLET["height"], selector
        image = page.locator("img[src*='/evaluation/img/']")
        # Shown large and sharp: a whole-number enlargement without smoothing.
        assert image.evaluate("e => getComputedStyle(e).imageRendering") == "pixelated"
        width = image.bounding_box()["width"]
        assert width >= 300 and round(width) % item_at(study, 1).width == 0
        # Comments are folded away: no Tab stop in them until asked for.
        assert not page.locator("textarea").first.is_visible()
        page.locator("body").click(position={"x": 5, "y": 700})
        for key in ("4", "5", "1", "3"):
            page.keyboard.press(key)
        assert page.evaluate("scrollY") == 0
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/rate/2/")
        rows = Rating.objects.filter(item=item_at(study, 1), expert=study.expert)
        assert {r.dimension: r.score for r in rows} == {
            Dimension.STYLE: 4,
            Dimension.IMAGE_TEXT: 5,
            Dimension.DETAIL: 1,
            Dimension.BEAUTY: 3,
        }
        # Anchors on demand.
        toggle = page.locator("#anchors-toggle")
        anchor = page.locator(".eval-anchor").first
        assert anchor.bounding_box()["width"] <= 1
        toggle.click()
        assert toggle.get_attribute("aria-expanded") == "true"
        assert anchor.bounding_box()["width"] > 20
        assert page.blocked == []
    finally:
        page.context.close()


def test_an_incomplete_image_is_refused_and_nothing_saved(browser, live_server, study):
    page = logged_in(browser, live_server, study.expert, TABLET)
    try:
        page.goto(f"{live_server.url}/evaluation/studies/{study.pk}/rate/1/")
        page.locator("body").click(position={"x": 5, "y": 700})
        page.keyboard.press("2")
        page.keyboard.press("3")
        with page.expect_navigation() as nav:
            page.keyboard.press("Enter")
        assert nav.value.status == 400
        assert page.url.endswith("/rate/1/")
        alert = page.get_by_role("alert")
        assert "Detail richness" in alert.inner_text() and "Nothing was saved" in alert.inner_text()
        invalid = page.locator("fieldset[aria-invalid=true]")
        assert invalid.count() == 2
        assert not Rating.objects.filter(item=item_at(study, 1)).exists()
        # What was chosen is kept on the page, so nothing has to be done twice.
        assert page.locator("input[type=radio]:checked").count() == 2
    finally:
        page.context.close()


def test_one_scrolling_column_on_a_phone(browser, live_server, study):
    page = logged_in(browser, live_server, study.expert, PHONE)
    try:
        page.goto(f"{live_server.url}/evaluation/studies/{study.pk}/rate/1/")
        widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1]
        image = page.locator("img[src*='/evaluation/img/']").bounding_box()
        first = page.locator(f"#dim-{Dimension.STYLE}").bounding_box()
        assert image["y"] + image["height"] <= first["y"]
        for d in Dimension.values:
            box = page.locator(f"#dim-{d}").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
        small = page.eval_on_selector_all(
            "main label:has(input[type=radio]), main button, main summary, main a",
            "els => els.map(e => [e.innerText.trim(), e.getBoundingClientRect().height])"
            ".filter(([, h]) => h < 44)",
        )
        assert not small, f"touch targets under 44px: {small}"
    finally:
        page.context.close()


@pytest.mark.parametrize("lang", ["en", "zh", "ug"])
def test_axe_on_the_expert_pages(browser, live_server, study, lang):
    page = logged_in(browser, live_server, study.expert, TABLET, lang)
    try:
        for url in (
            "/evaluation/",
            f"/evaluation/studies/{study.pk}/",
            f"/evaluation/studies/{study.pk}/rate/1/",
        ):
            page.goto(live_server.url + url)
            assert page.locator("html").get_attribute("lang") == lang
            if lang == "ug":
                assert page.locator("html").get_attribute("dir") == "rtl"
            assert axe_violations(page, impacts=ALL_IMPACTS) == []
        assert page.blocked == []
    finally:
        page.context.close()
