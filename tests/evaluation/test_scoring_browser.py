"""The experts' blind scoring form in Debian's Chromium (Playwright): rating with the keyboard
alone, save and continue later, editing, what a screen reader is told (Chromium's own
accessibility tree), blindness of everything on the page, and a tablet viewport.

Screenshots go to test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from evaluation import services
from evaluation.models import Assignment, Dimension, Panel, Rating, StudyItem
from evaluation.views import ANCHORS, HELP
from generation.models import BaseModel, GeneratedImage, TrainingRun
from tests.conftest import make_user, new_context
from tests.evaluation.conftest import make_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
TABLET = {"width": 768, "height": 1024}
LABELS = dict(Dimension.choices)  # value -> the legend an expert hears, e.g. "Style consistency"


@pytest.fixture
def page(browser):
    context = new_context(browser, viewport=DESKTOP)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def study(transactional_db):
    """Base vs LoRA (2 seeds) plus one calibration reference: 5 items per expert. The model
    and run get distinctive names so a leak of them onto the page would be caught."""
    world = make_world()
    BaseModel.objects.filter(pk=world.request.base_model_id).update(name="sd15-pruned-emaonly")
    TrainingRun.objects.filter(pk=world.request.training_run_id).update(name="uyghur-atlas-r16")
    expert = make_user("rater1", "expert")
    panel = Panel.objects.create(name="art practitioners")
    panel.members.set([expert, make_user("rater2", "expert")])
    study = services.study_create(
        title="Base vs LoRA, epoch 15",
        panel=panel,
        generated_images=world.images,
        reference_images=[world.reference],
        seed=42,
    )
    study.expert = expert
    return study


# --- helpers --------------------------------------------------------------------------------


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"scoring-{name}.png"), full_page=True)


def path_of(page) -> str:
    return urlsplit(page.url).path  # (a skip link's #main can ride along a redirect)


def focused(page) -> dict:
    return page.evaluate(
        """() => { const e = document.activeElement; return {
            tag: e.tagName.toLowerCase(), type: e.type || '', name: e.name || '',
            value: e.value || '', checked: !!e.checked,
            text: (e.innerText || e.textContent || '').trim(), id: e.id }; }"""
    )


def tab_until(page, predicate, limit: int = 60, back: bool = False) -> dict:
    """Press Tab (or Shift+Tab) until the focused element satisfies ``predicate``."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if back else "Tab")
        now = focused(page)
        if predicate(now):
            return now
    pytest.fail(f"not reachable with the Tab key (last focus: {focused(page)})")


def activate_link(page, text: str) -> None:
    tab_until(page, lambda f: f["tag"] == "a" and f["text"] == text)
    with page.expect_navigation():
        page.keyboard.press("Enter")


def log_in(page, base_url: str, user) -> None:
    """Type the credentials and press Enter, as a keyboard user does."""
    page.goto(f"{base_url}/accounts/login/?next=/evaluation/")
    page.get_by_label("Username").focus()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type("pw-" + user.username)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/evaluation/"


def skip_to_content(page) -> None:
    """The first Tab stop is the skip link; Enter moves focus into <main>."""
    page.locator("body").focus()
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to content"
    page.keyboard.press("Enter")
    assert focused(page)["tag"] == "main"


def rate_with_keyboard(page, scores: dict[str, int], comments: dict[str, str]) -> None:
    """From inside <main>, Tab into each dimension's radio group, move with the arrow keys (or
    Space for the focused option); then open the folded comments and type them; no mouse."""
    for dimension, score in scores.items():
        radio = tab_until(page, lambda f, d=dimension: f["name"] == f"score_{d}")
        assert radio["type"] == "radio"
        current = int(radio["value"])
        if score == current:
            page.keyboard.press("Space")
        else:
            key = "ArrowDown" if score > current else "ArrowUp"
            for _ in range(abs(score - current)):
                page.keyboard.press(key)
        now = focused(page)
        assert now["name"] == f"score_{dimension}" and now["value"] == str(score)
        assert now["checked"], f"{dimension}: the focused option is not selected"
        # A keyboard user sees where they are: the focus ring is drawn.
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), f"no visible focus on {dimension}"
    if comments:
        summary = tab_until(page, lambda f: f["tag"] == "summary")
        assert summary["text"] == "Comments (optional)"
        if not page.locator("details.eval-comments").evaluate("e => e.open"):
            page.keyboard.press("Enter")
        for dimension, comment in comments.items():
            box = tab_until(page, lambda f, d=dimension: f["id"] == f"comment-{d}")
            assert box["tag"] == "textarea"
            page.keyboard.type(comment)


def submit_with_keyboard(page, button: str) -> None:
    """Tab forward to the button (it follows the scales), or back to it from the comments."""
    wanted = lambda f: f["tag"] == "button" and f["text"] == button  # noqa: E731
    back = page.evaluate("document.activeElement.tagName") == "TEXTAREA"
    now = tab_until(page, wanted, back=back)
    assert now["type"] == "submit"
    with page.expect_navigation():
        page.keyboard.press("Enter")


def ax_tree(page) -> list[dict]:
    """Chromium's accessibility tree (what a screen reader gets): role, name, properties.
    Ignored nodes stay in the list (``ignored``) so parent links still connect."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    out = []
    for node in nodes:
        props = {p["name"]: p["value"].get("value") for p in node.get("properties", [])}
        if "value" in node:  # a progress bar's current value
            props["valuenow"] = node["value"].get("value")
        out.append(
            {
                "id": node["nodeId"],
                "parent": node.get("parentId"),
                "ignored": node.get("ignored", False),
                "role": node.get("role", {}).get("value"),
                "name": (node.get("name", {}).get("value") or "").strip(),
                "description": (node.get("description", {}).get("value") or "").strip(),
                "props": props,
            }
        )
    return out


def ax_find(tree: list[dict], role: str, root: dict | None = None) -> list[dict]:
    """Exposed nodes of ``role``, anywhere or under ``root``, in document order."""
    if root is None:
        return [n for n in tree if n["role"] == role and not n["ignored"]]
    children: dict[str, list[dict]] = {}
    for node in tree:
        children.setdefault(node["parent"], []).append(node)
    found, stack = [], list(reversed(children.get(root["id"], [])))
    while stack:
        node = stack.pop()
        if node["role"] == role and not node["ignored"]:
            found.append(node)
        stack.extend(reversed(children.get(node["id"], [])))
    return found


def ax_progress(page) -> dict:
    bars = ax_find(ax_tree(page), "progressbar")
    assert len(bars) == 1, bars
    assert bars[0]["name"], "the progress bar has no accessible name"
    return bars[0]


def position_of(study, item) -> int:
    return Assignment.objects.get(study=study, expert=study.expert, item=item).position


def item_at(study, position: int) -> StudyItem:
    return Assignment.objects.get(study=study, expert=study.expert, position=position).item


def ratings(study, item) -> dict[str, tuple[int, str]]:
    rows = Rating.objects.filter(study=study, expert=study.expert, item=item)
    return {r.dimension: (r.score, r.comment) for r in rows}


# --- 1. keyboard only -----------------------------------------------------------------------


def test_expert_rates_an_image_with_the_keyboard_alone(page, live_server, study):
    base = live_server.url
    log_in(page, base, study.expert)
    activate_link(page, study.expert_label)
    assert path_of(page) == f"/evaluation/studies/{study.pk}/"
    activate_link(page, "Continue with image 1")
    assert path_of(page) == f"/evaluation/studies/{study.pk}/rate/1/"
    assert page.locator("h1").inner_text() == "Image 1 of 5"

    tree = ax_tree(page)
    progress = ax_progress(page)
    assert (progress["props"]["valuenow"], progress["props"]["valuemax"]) == (0, 5)
    # Each dimension is a named group of five named radio buttons, none chosen yet.
    for value, label in LABELS.items():
        [group] = [n for n in ax_find(tree, "group") if n["name"] == label]
        # The question, read on entering the group (image-text match: with the text to match).
        assert group["description"].startswith(str(HELP[value]))
        radios = ax_find(tree, "radio", group)
        assert [r["name"].split()[0] for r in radios] == ["1", "2", "3", "4", "5"], radios
        assert all(len(r["name"]) > 3 for r in radios), "options need their anchor text"
        assert not any(r["props"].get("checked") in (True, "true") for r in radios)
    # The prompt and the passage are shown under the image, and image-text match is described
    # by them (a screen reader reads them on entering that group).
    item = item_at(study, 1)
    text = page.locator("#item-text")
    assert item.prompt and text.get_by_text(item.prompt).is_visible()
    assert text.get_by_text(item.passage.original_text).is_visible()
    assert text.get_by_text(item.passage.english_translation).is_visible()
    described = page.locator(f"#dim-{Dimension.IMAGE_TEXT}").get_attribute("aria-describedby")
    assert "item-text" in described.split()
    [text_group] = [n for n in ax_find(tree, "group") if n["name"] == LABELS[Dimension.IMAGE_TEXT]]
    assert item.passage.english_translation in text_group["description"]

    skip_to_content(page)
    chosen = {
        Dimension.STYLE: 4,
        Dimension.IMAGE_TEXT: 5,
        Dimension.DETAIL: 1,
        Dimension.BEAUTY: 3,
    }
    rate_with_keyboard(page, chosen, {Dimension.DETAIL: "blurred border motifs"})
    page.evaluate("window.scrollTo(0, 0)")  # (the sticky image follows the scroll position)
    shot(page, "desktop-filled")
    submit_with_keyboard(page, "Save and go to the next image")

    assert path_of(page) == f"/evaluation/studies/{study.pk}/rate/2/"
    assert ratings(study, item) == {
        Dimension.STYLE: (4, ""),
        Dimension.IMAGE_TEXT: (5, ""),
        Dimension.DETAIL: (1, "blurred border motifs"),
        Dimension.BEAUTY: (3, ""),
    }
    assert Rating.objects.filter(expert=study.expert).count() == 4
    progress = ax_progress(page)
    assert (progress["props"]["valuenow"], progress["props"]["valuemax"]) == (1, 5)
    assert page.get_by_text("1 of 5 images fully rated").is_visible()
    assert not page.locator("input[type=radio]:checked").count()  # image 2 starts empty


# --- 2. save and continue later, edit -------------------------------------------------------


def test_save_continue_later_and_edit_a_rated_image(page, live_server, study):
    base = live_server.url
    log_in(page, base, study.expert)
    activate_link(page, study.expert_label)
    activate_link(page, "Continue with image 1")
    first = item_at(study, 1)
    skip_to_content(page)
    rate_with_keyboard(
        page,
        {Dimension.STYLE: 2, Dimension.IMAGE_TEXT: 3, Dimension.DETAIL: 4, Dimension.BEAUTY: 5},
        {Dimension.BEAUTY: "lovely ikat edges"},
    )
    submit_with_keyboard(page, "Save and continue later")
    assert path_of(page) == f"/evaluation/studies/{study.pk}/"
    assert page.get_by_role("status").get_by_text("continue later").is_visible()
    assert ax_progress(page)["props"]["valuenow"] == 1

    # Leave: log out, and come back another day.
    tab_until(page, lambda f: f["tag"] == "button" and f["text"] == "Log out")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    log_in(page, base, study.expert)
    activate_link(page, study.expert_label)
    assert page.get_by_text("1 of 5 images fully rated").is_visible()
    activate_link(page, "Continue with image 2")  # the next unrated image, not image 1
    assert path_of(page) == f"/evaluation/studies/{study.pk}/rate/2/"
    assert not page.locator("input[type=radio]:checked").count()

    # Reopen image 1 from the study's list: the saved answers are there, and can change.
    page.goto(f"{base}/evaluation/studies/{study.pk}/")
    skip_to_content(page)
    activate_link(page, "Image 1")
    assert path_of(page) == f"/evaluation/studies/{study.pk}/rate/1/"
    checked = page.eval_on_selector_all(
        "input[type=radio]:checked", "els => els.map(e => [e.name, e.value])"
    )
    assert sorted(checked) == sorted(
        [
            ["score_style_consistency", "2"],
            ["score_image_text_match", "3"],
            ["score_detail_richness", "4"],
            ["score_artistic_beauty", "5"],
        ]
    )
    assert page.get_by_label("Comment on artistic beauty").input_value() == "lovely ikat edges"
    skip_to_content(page)
    # Tab lands on the chosen option of a group; the arrow keys move the choice.
    rate_with_keyboard(page, {Dimension.STYLE: 5}, {})
    submit_with_keyboard(page, "Save and continue later")
    assert ratings(study, first) == {
        Dimension.STYLE: (5, ""),
        Dimension.IMAGE_TEXT: (3, ""),
        Dimension.DETAIL: (4, ""),
        Dimension.BEAUTY: (5, "lovely ikat edges"),
    }
    rows = Rating.objects.filter(study=study, expert=study.expert)
    assert rows.count() == 4
    assert rows.values("item", "dimension").distinct().count() == 4  # one row each, no copies

    # Once the study is closed the form is read-only.
    services.study_close(study=study)
    page.goto(f"{base}/evaluation/studies/{study.pk}/rate/1/")
    assert page.locator("input[type=radio]:checked").count() == 4
    assert page.locator("input[type=radio]:enabled").count() == 0
    assert page.get_by_role("button", name="Save and go to the next image").count() == 0


# --- 3. accessibility basics, blindness, tablet ---------------------------------------------


def leak_pattern(study) -> re.Pattern:
    """Anything that would tell an expert which model or run made an image."""
    words = {"lora", "base", "reference", "condition", "checkpoint", "adapter"}
    words |= set(StudyItem.objects.filter(study=study).values_list("condition", flat=True))
    words |= set(BaseModel.objects.values_list("name", flat=True))
    runs = TrainingRun.objects.all()
    words |= {r.name for r in runs if r.name} | {r.trigger_token for r in runs if r.trigger_token}
    generated = GeneratedImage.objects.filter(study_items__study=study).select_related("file")
    words |= {g.file.name for g in generated} | {Path(g.file.name).name for g in generated}
    parts = [rf"(?<!\w){re.escape(w)}(?!\w)" for w in sorted(words) if w]
    parts += [rf"\brun[\s#_/-]*{r.pk}\b" for r in runs]
    parts += [rf"generated[-_]images?/{g.pk}\b" for g in generated]
    return re.compile("|".join(parts), re.I)


PAGE_TEXT = """() => {
  const attrs = [];
  for (const el of document.querySelectorAll('*')) {
    for (const a of el.attributes) {
      // The site's own navigation link to the curator pages is not about this image.
      if (a.name === 'href' && a.value === '/curator/generation/') continue;
      attrs.push(a.name + '=' + a.value);
    }
  }
  return {text: document.body.innerText, title: document.title, attrs: attrs};
}"""


# The scale's fixed wording is the same on every page ("... the reference style"), so it
# tells nothing about an image; everything else must not name a model, run or condition.
SCALE_WORDING = [str(a) for anchors in ANCHORS.values() for a in anchors]
SCALE_WORDING += [str(h) for h in HELP.values()]


def assert_blind(page, pattern: re.Pattern) -> dict:
    seen = page.evaluate(PAGE_TEXT)
    text = seen["text"]
    for wording in SCALE_WORDING:
        text = text.replace(wording, "")
    places = [("text", text), ("title", seen["title"])]
    places += [("attribute", a) for a in seen["attrs"]]
    for where, value in places:
        match = pattern.search(value)
        assert not match, f"the page reveals {match.group(0)!r} in its {where}: {value[:300]!r}"
    return seen


def assert_basics(page) -> None:
    assert page.locator("html").get_attribute("lang")
    assert page.locator("h1").count() == 1
    unlabelled = page.eval_on_selector_all(
        "input:not([type=hidden]), select, textarea, button",
        """els => els.filter(e => {
            const aria = (e.getAttribute('aria-label') || '').trim()
              || e.getAttribute('aria-labelledby');
            const own = e.tagName === 'BUTTON' && e.innerText.trim();
            const labels = [...(e.labels || [])].some(l => l.textContent.trim());
            return !(aria || own || labels);
        }).map(e => e.outerHTML.slice(0, 120))""",
    )
    assert not unlabelled, f"form controls without a label: {unlabelled}"
    roles = ("radio", "textbox", "combobox", "button", "progressbar", "group", "img", "link")
    nameless = [
        n for n in ax_tree(page) if n["role"] in roles and not n["ignored"] and not n["name"]
    ]
    assert not nameless, f"no accessible name: {nameless}"


def assert_fits(page) -> None:
    widths = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.body.scrollWidth, window.innerWidth]"
    )
    assert max(widths[:2]) <= widths[2], f"scrolls sideways: {widths}"


def test_accessible_blind_and_tablet_friendly(browser, page, live_server, study):
    base = live_server.url
    pattern = leak_pattern(study)
    log_in(page, base, study.expert)
    pages = {}
    for position in (1, 2, 3, 4, 5):
        page.goto(f"{base}/evaluation/studies/{study.pk}/rate/{position}/")
        assert_basics(page)
        assert_blind(page, pattern)
        # Base, LoRA and the calibration image get the very same image and form, but for the
        # position, the opaque token and the form's CSRF token: nothing differs by condition.
        area = page.locator(".eval-rate").evaluate(
            """el => { const copy = el.cloneNode(true);
              copy.querySelectorAll('[name=csrfmiddlewaretoken]').forEach(e => e.remove());
              return copy.outerHTML; }"""
        )
        token = item_at(study, position).token
        pages[position] = re.sub(r"\d+", "#", area.replace(token, "TOKEN"))
    assert len(set(pages.values())) == 1, "item forms differ beyond position and token"
    conditions = {item_at(study, p).condition for p in pages}
    assert conditions == {"base", "lora", "reference"}
    page.goto(f"{base}/evaluation/studies/{study.pk}/rate/1/")
    shot(page, "desktop")
    for url in ("/evaluation/", f"/evaluation/studies/{study.pk}/"):
        page.goto(base + url)
        assert_basics(page)
        assert_blind(page, pattern)

    tablet = new_context(
        browser, viewport=TABLET, has_touch=True, storage_state=page.context.storage_state()
    )
    try:
        tab = tablet.new_page()
        for url in (f"/evaluation/studies/{study.pk}/", f"/evaluation/studies/{study.pk}/rate/1/"):
            tab.goto(base + url)
            assert_fits(tab)
        for dimension in Dimension.values:
            box = tab.locator(f"#dim-{dimension}").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= TABLET["width"]
        # Touch targets: every option and button is at least 44 px high.
        small = tab.eval_on_selector_all(
            "main label:has(input[type=radio]), main button",
            "els => els.map(e => [e.innerText.trim(), e.getBoundingClientRect().height])"
            ".filter(([, h]) => h < 44)",
        )
        assert not small, f"touch targets under 44px: {small}"
        # Focus is never hidden (WCAG 2.4.11): each option and the buttons, once reached with
        # the keyboard and scrolled into view, are on top, not under the image or anything.
        skip_to_content(tab)
        covered = []
        for _ in range(40):
            tab.keyboard.press("Tab")
            now = focused(tab)
            if now["tag"] == "a" and now["text"].startswith(("Previous", "Next image")):
                break
            on_top = tab.evaluate(
                """() => { const e = document.activeElement, r = e.getBoundingClientRect();
                  const x = r.left + r.width / 2, y = r.top + r.height / 2;
                  const hit = document.elementFromPoint(x, y);
                  return !!hit && (hit === e || e.contains(hit)
                    || (e.labels && [...e.labels].some(l => l.contains(hit)))); }"""
            )
            if not on_top:
                covered.append(now["name"] or now["text"])
        assert not covered, f"focused controls hidden under something: {covered}"
        tab.evaluate("window.scrollTo(0, 0)")
        shot(tab, "tablet")
    finally:
        tablet.close()
