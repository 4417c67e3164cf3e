"""A curator's whole day in Debian's Chromium (Playwright) against the live server and a real
RQ worker: log in, make a collection and an item with a Uyghur title, upload an image (a bad
file is refused with the API's message), add a motif, draw an annotation, import a sheet with
one bad row (the preview shows it, nothing is written until confirmed), build a dataset with
live counts, edit a caption, freeze it with progress, queue a training run whose preset follows
the dataset, make a panel and a study, close it and approve a LoRA image for the kiosk.

axe-core runs on every curator page (no serious or critical violation); screenshots go to
test-artifacts/curator/ (docs/curators-guide.md uses copies of them).
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.a11y import axe_violations
from tests.conftest import make_user, new_context, wait_for
from tests.generation.conftest import base_model, tiny_model_dir  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # sync Playwright beside live_server

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "curator"


def pattern_png(seed: int, size: tuple[int, int] = (240, 160)) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    array = np.zeros((h, w, 3), dtype=np.uint8)
    array[..., 0] = (np.arange(w)[None, :] // (6 + seed) % 2) * 200
    array[..., 1] = (np.arange(h)[:, None] // (4 + seed) % 2) * 150
    array[..., 2] = rng.integers(0, 60, size=(h, w))
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


class Day:
    """The page plus the checks every curator page gets: axe, no script errors, a screenshot."""

    def __init__(self, page, base: str):
        self.page, self.base, self.shots = page, base, 0
        self.errors: list[str] = []
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and self.errors.append(m.text),
        )

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)

    def check(self, name: str, full_page: bool = True) -> None:
        self.page.wait_for_load_state("networkidle")
        assert axe_violations(self.page) == []
        assert not self.errors, self.errors
        self.shots += 1
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(
            path=str(ARTIFACTS / f"{self.shots:02d}-{name}.png"), full_page=full_page
        )


@pytest.fixture
def day(browser, live_server):
    for old in ARTIFACTS.glob("*.png"):  # this run's screenshots only, numbered in order
        old.unlink()
    context = new_context(browser, viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    yield Day(page, live_server.url)
    context.close()


def test_a_curators_whole_day(day, start_worker, base_model, tmp_path):  # noqa: F811
    from evaluation.models import Panel, Study
    from generation.models import GeneratedImage, GenerationRequest, TrainingRun
    from heritage import imaging
    from heritage.models import Collection, HeritageItem, SemioticAnnotation, TrainingDataset
    from jobs.models import Job

    start_worker(("default",))  # derivatives and freezing; the GPU queue is not served here
    make_user("curator1", "curator", is_staff=True)
    experts = [make_user(f"expert{n}", "expert", first_name=f"Expert {n}") for n in (1, 2)]
    page = day.page

    # Log in: a curator lands on the curator home, which links every task.
    day.go("/accounts/login/")
    page.get_by_label("Username").fill("curator1")
    page.get_by_label("Password").fill("pw-curator1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/curator/$"))
    for task in (
        "Collections, items and images",
        "Import a sheet",
        "Build, edit captions, freeze",
        "Train a LoRA",
        "Expert panels",
        "Approve images for the kiosk",
    ):
        assert page.get_by_role("link", name=task).count() >= 1, task
    day.check("home")

    # A collection with titles in English and Uyghur (its input is right to left).
    page.get_by_role("link", name="Collections, items and images").click()
    assert page.locator("#title_ug").get_attribute("dir") == "rtl"
    assert page.locator("#title_ug").get_attribute("lang") == "ug"
    page.get_by_label("Slug (in URLs and import sheets)").fill("atlas-silk")
    page.locator("#title_en").fill("Atlas silk")
    page.locator("#title_ug").fill("ئەتلەس يىپەك")
    day.check("collections")
    page.get_by_role("button", name="Create the collection").click()
    page.wait_for_url(re.compile(r"/collections/atlas-silk/$"))
    assert Collection.objects.get(slug="atlas-silk").title == {
        "en": "Atlas silk",
        "ug": "ئەتلەس يىپەك",
    }

    # An item with a Uyghur title and a rights statement.
    page.get_by_label("Accession number").fill("ATL-1")
    page.locator("#new-title_en").fill("Atlas with comb motifs")
    page.locator("#new-title_ug").fill("تاغاق نۇسخىلىق ئەتلەس")
    page.locator("#new-rights").select_option("http://rightsstatements.org/vocab/InC/1.0/")
    day.check("collection")
    page.get_by_role("button", name="Create the item").click()
    page.wait_for_url(re.compile(r"/items/\d+/$"))
    item = HeritageItem.objects.get(accession_number="ATL-1")
    assert item.title["ug"] == "تاغاق نۇسخىلىق ئەتلەس"
    assert page.locator('span[lang="ug"][dir="rtl"]', has_text="تاغاق").count() == 1

    # Upload: a file that is no image is refused with the message the API gives; a PNG goes in.
    bad, good = tmp_path / "notes.png", tmp_path / "atlas-1.png"
    bad.write_bytes(b"this is not an image")
    good.write_bytes(pattern_png(1))
    try:
        imaging.image_inspect(bad.read_bytes(), max_bytes=10**9, max_pixels=10**9)
    except imaging.ImageRejected as exc:
        api_message = str(exc)
    page.locator("#file").set_input_files(str(bad))
    refused = page.locator("#upload-status li.error")
    refused.wait_for()
    assert api_message in refused.inner_text()
    assert not item.images.exists()
    day.check("upload-refused", full_page=False)
    with page.expect_navigation():
        page.locator("#file").set_input_files(str(good))
    image = item.images.get()
    assert (image.width, image.height) == (240, 160)
    wait_for(
        lambda: Job.objects.filter(kind="heritage.derivatives", status="succeeded").exists(),
        message="the derivatives job did not finish",
    )

    # The motif vocabulary.
    day.go("/curator/catalogue/motifs/")
    page.get_by_label("Slug").fill("comb")
    page.locator("#label_en").fill("comb")
    page.locator("#label_ug").fill("تاغاق")
    page.get_by_role("button", name="Add the term").click()
    page.get_by_text("Motif term comb saved.").wait_for()
    day.check("motifs")

    # Draw an annotation: drag a region on the image, pick the category and a motif.
    day.go(f"/curator/catalogue/images/{image.pk}/")
    canvas = page.locator("#canvas")
    page.locator("#annotated").wait_for()
    page.wait_for_function("document.getElementById('annotated').complete")
    box = canvas.bounding_box()
    sx, sy = box["width"] / 240, box["height"] / 160  # page pixels per image pixel
    page.mouse.move(box["x"] + 20 * sx, box["y"] + 30 * sy)
    page.mouse.down()
    page.mouse.move(box["x"] + 80 * sx, box["y"] + 70 * sy, steps=8)
    page.mouse.move(box["x"] + 140 * sx, box["y"] + 110 * sy, steps=8)
    page.mouse.up()
    region = [int(page.locator(f"#region_{k}").input_value()) for k in "xywh"]
    assert all(abs(a - b) <= 2 for a, b in zip(region, [20, 30, 120, 80], strict=True)), region
    page.get_by_label("Category (after Peirce)").select_option("iconographic")
    page.get_by_label("comb").first.check()
    page.locator("#meaning_en").fill("Combs: daily life woven in")
    day.check("annotate")
    page.get_by_role("button", name="Add the annotation").click()
    page.get_by_text("Annotation added.").wait_for()
    annotation = SemioticAnnotation.objects.get(image=image)
    assert annotation.region == tuple(region) and [m.slug for m in annotation.motifs.all()] == [
        "comb"
    ]
    assert page.locator(".region.saved").count() == 1
    # Edit it: the category changes, the region stays.
    page.locator(f"#annotation-{annotation.pk} summary").click()
    page.locator(f"#cat-{annotation.pk}").select_option("cultural_semiotic")
    page.locator(f"#annotation-{annotation.pk}").get_by_role("button", name="Save").click()
    page.get_by_text("Annotation saved.").wait_for()
    annotation.refresh_from_db()
    assert annotation.category == "cultural_semiotic" and annotation.region == tuple(region)
    day.check("annotated")

    # Import a sheet with one bad row: the preview says so and writes nothing until confirmed.
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(
        "accession_number,collection,title_en,title_ug,published\n"
        "ATL-2,atlas-silk,Atlas with almonds,بادام نۇسخىلىق,false\n"
        "ATL-3,no-such-collection,Lost,,false\n"
        "ATL-1,atlas-silk,Atlas with comb motifs (revised),,false\n",
        encoding="utf-8",
    )
    day.go("/curator/catalogue/import/")
    assert (
        page.get_by_role("link", name="Download a CSV template")
        .get_attribute("href")
        .endswith("/import/template.csv")
    )
    page.get_by_label("Sheet (CSV with a header line, or JSON)").set_input_files(str(sheet))
    page.get_by_role("button", name="Preview the import").click()
    preview = page.locator("#preview")
    preview.wait_for()
    rows = [r.inner_text() for r in preview.locator("tbody tr").all()]
    assert "created" in rows[0] and "ATL-2" in rows[0]
    assert "refused" in rows[1] and "unknown collection 'no-such-collection'" in rows[1]
    assert "updated" in rows[2]
    assert not HeritageItem.objects.filter(accession_number="ATL-2").exists()  # a dry run
    assert (
        HeritageItem.objects.get(accession_number="ATL-1").title["en"] == "Atlas with comb motifs"
    )
    day.check("import-preview")
    page.get_by_role("button", name="Import these rows").click()
    page.get_by_role("heading", name="Imported").wait_for()
    assert HeritageItem.objects.get(accession_number="ATL-2").title["ug"] == "بادام نۇسخىلىق"
    assert not HeritageItem.objects.filter(accession_number="ATL-3").exists()
    day.check("import-done")

    # Build a dataset from a selection, with live counts.
    day.go("/curator/catalogue/datasets/")
    page.get_by_label("Name").fill("atlas")
    page.get_by_label("Atlas silk (1)").check()
    # The item is not published: left out unless asked for, and the count says so.
    page.locator("#count", has_text="0 would go in").wait_for()
    assert "ATL-1" in page.locator("#count").inner_text()
    assert "unpublished" in page.locator("#count").inner_text()
    page.get_by_label("Include unpublished items and collections").check()
    expect(page.locator("#count")).not_to_contain_text("would go in")
    assert "1 image matches" in page.locator("#count").inner_text()
    page.get_by_label("Iconographic").check()
    page.locator("#count", has_text="0 images match").wait_for()
    page.get_by_label("Iconographic").uncheck()
    page.locator("#count", has_text="1 image matches").wait_for()
    page.get_by_label("Resolution (px)").fill("64")
    page.get_by_label("Validation fraction").fill("0")
    day.check("datasets")
    page.get_by_role("button", name="Make the draft dataset").click()
    page.wait_for_load_state()
    assert not page.locator(".errors").count(), page.locator(".errors").inner_text()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"))
    dataset = TrainingDataset.objects.get(name="atlas")
    example = dataset.examples.get()
    # Edit the caption before freezing.
    caption = page.get_by_label("Caption of ATL-1")
    caption.fill("[U], atlas silk with combs, woven")
    page.get_by_role("button", name="Save the captions").click()
    page.get_by_text("1 example(s) saved.").wait_for()
    example.refresh_from_db()
    assert example.caption == "[U], atlas silk with combs, woven"
    day.check("dataset-draft")
    # Freeze: a job on the worker, its progress shown until the page shows the frozen dataset.
    page.get_by_role("button", name=re.compile("^Freeze")).click()
    page.get_by_role("link", name="Train a LoRA on it").wait_for(timeout=120_000)
    dataset.refresh_from_db()
    assert dataset.frozen and dataset.content_hash
    day.check("dataset-frozen")

    # Queue a training run: the Atlas dataset gets the atlas-000 preset, settings shown.
    page.get_by_role("link", name="Train a LoRA on it").click()
    page.wait_for_url(re.compile(r"/runs/new/"))
    assert page.locator("#preset-atlas-000").is_checked()
    assert "fits this dataset" in page.locator('label[for="preset-atlas-000"]').inner_text()
    assert "unet_attention" in page.locator(".preset").first.inner_text()
    day.check("run-new")
    page.get_by_label("Settings that differ from the preset (JSON)").fill('{"max_steps": 2}')
    page.get_by_role("button", name="Queue the run").click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"))
    run = TrainingRun.objects.get(dataset=dataset)
    assert run.preset == "atlas-000" and run.settings["target"] == "unet_attention"
    assert run.job.queue == "gpu" and run.job.status == "queued"
    page.locator("#loss-chart").wait_for()
    day.check("run")

    # A sweep over two settings: one run per cell, compared on a page that updates itself.
    day.go("/curator/generation/sweeps/new/")
    page.get_by_label("Name").fill("atlas batch x lr")
    page.locator("#settings").fill('{"max_steps": 2}')
    day.check("sweep-new")
    page.get_by_role("button", name="Queue the sweep").click()
    page.wait_for_url(re.compile(r"/sweeps/\d+/$"))
    assert page.locator("#sweep-live tbody tr").count() == 4
    assert page.locator("#sweep-live").get_attribute("hx-trigger") == "every 3s"
    day.check("sweep")

    # A gazetteer passage: original, paraphrase, translation, then its prompt approved.
    day.go("/curator/catalogue/passages/")
    page.get_by_label("Source work (gazetteer)").fill("Khotan gazetteer")
    page.get_by_label("Original (classical Chinese)").fill("河水東流 兩岸桑田")
    page.get_by_label("Modern paraphrase").fill("河水向东流去 两岸是桑田")
    page.get_by_label("English translation").fill("The river flows east between mulberry fields.")
    page.get_by_label("Items it describes (accession numbers, space separated)").fill("ATL-1")
    page.get_by_role("button", name="Add the passage").click()
    page.get_by_text("Passage added.").wait_for()
    page.get_by_label("Prompt (draft)").fill("a river between mulberry fields, silk road")
    day.check("passage")
    page.get_by_role("button", name="Save and approve the prompt").click()
    page.get_by_text("Prompt approved.").wait_for()
    from heritage.models import GazetteerPassage

    passage = GazetteerPassage.objects.get(source_work="Khotan gazetteer")
    assert passage.approved_prompt == "a river between mulberry fields, silk road"
    assert list(passage.items.all()) == [item]

    # Images of a LoRA (made here as rows: the GPU queue is not served in this test).
    finished = TrainingRun.objects.create(
        name="atlas lora",
        dataset=dataset,
        base_model=base_model,
        settings={},
        preset="atlas-000",
        job=Job.objects.create(kind="generation.train", status="succeeded", timeout=60),
    )
    from archives.services import stored_file_save

    request = GenerationRequest.objects.create(
        prompt="[U], comb pattern",
        final_prompt="[U], comb pattern",
        base_model=base_model,
        training_run=finished,
        seeds=[7],
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
    )
    made = {}
    for index, condition in enumerate(("base", "lora")):
        made[condition] = GeneratedImage.objects.create(
            request=request,
            seed=7,
            condition=condition,
            prompt="[U], comb pattern",
            width=64,
            height=64,
            item=item,
            file=stored_file_save(
                name=f"generation/tests/day-{condition}.png",
                content=pattern_png(5 + index, (64, 64)),
            ),
        )

    # A panel of the two experts, then a study of the request's images.
    day.go("/curator/evaluation/panels/")
    page.get_by_label("Name").fill("Atlas weavers")
    for expert in experts:
        page.locator(f"#new-e{expert.pk}").check()
    day.check("panels")
    page.get_by_role("button", name="Make the panel").click()
    page.get_by_text("Panel Atlas weavers made.").wait_for()
    panel = Panel.objects.get(name="Atlas weavers")
    assert set(panel.members.all()) == set(experts)
    day.go("/evaluation/studies/new/")
    page.get_by_label("Title (curators only)").fill("Atlas LoRA vs base")
    page.locator("#panel").select_option(str(panel.pk))
    page.locator(f'input[name="requests"][value="{request.pk}"]').check()
    page.get_by_role("button", name="Create the study").click()
    page.wait_for_url(re.compile(r"/studies/\d+/report/$"))
    study = Study.objects.get(title="Atlas LoRA vs base")

    # While the study is open nothing is approvable; the queue says why.
    day.go("/curator/evaluation/approvals/")
    assert page.locator(f"#gen-{made['base'].pk}").count() == 0
    assert "open study" in page.locator(f"#gen-{made['lora'].pk}").inner_text()
    page.get_by_role("button", name="Approve for the kiosk").wait_for(state="detached")
    # Close the study: the report page always asks for confirmation first (the confirmation
    # page loads after the click; reading it at once raced the navigation under load).
    day.go(f"/evaluation/studies/{study.pk}/report/")
    page.get_by_role("button", name=re.compile("Close")).first.click()
    page.get_by_role("button", name="Yes, close the study").click()
    page.get_by_text("The study is closed; ratings are final.").wait_for()
    assert Study.objects.get(pk=study.pk).status == "closed"
    day.go("/curator/evaluation/approvals/")
    card = page.locator(f"#gen-{made['lora'].pk}")
    assert page.locator(f"#gen-{made['base'].pk}").count() == 0  # never a base-model image
    day.check("approvals")
    card.get_by_role("button", name="Approve for the kiosk").click()
    page.get_by_text("Approved for the kiosk.").wait_for()
    made["lora"].refresh_from_db()
    assert made["lora"].approved
    day.check("approved")
    assert not GeneratedImage.objects.get(pk=made["base"].pk).approved

    # The other curator pages pass axe too.
    for path in (
        "/curator/catalogue/",
        "/curator/catalogue/passages/",
        f"/curator/catalogue/items/{item.pk}/",
        "/curator/generation/sweeps/new/",
        "/curator/generation/",
    ):
        day.go(path)
        day.check(path.strip("/").replace("/", "-"))


def test_an_expert_lands_on_their_studies(browser, live_server):
    make_user("expert9", "expert")
    context = new_context(browser)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("expert9")
    page.get_by_label("Password").fill("pw-expert9")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/evaluation/$"))
    assert page.url.endswith("/evaluation/")
    context.close()
