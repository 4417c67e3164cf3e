"""Training pages: the preset follows the dataset, sweeps are made and compared on pages (live,
curves overlaid), and the approval queue lists only LoRA images, with reasons."""

from __future__ import annotations

import pytest

from generation.models import GeneratedImage, GenerationRequest, Sweep, TrainingRun
from jobs.models import Job
from tests.conftest import make_user
from tests.generation.conftest import striped_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def web(client):
    client.force_login(make_user("cur", "curator", is_staff=True))
    return client


@pytest.fixture
def atlas_dataset(frozen_dataset):
    """The same images, annotated after Peirce: an Atlas set."""
    from heritage import services
    from heritage.models import ItemImage

    for image in ItemImage.objects.all():
        services.annotation_create(image=image, category="iconographic")
    draft = services.training_dataset_create(
        name="atlas", resolution=32, collections=["silk"], validation_fraction=0.25
    )
    return services.training_dataset_freeze(dataset=draft)


def test_the_preset_follows_the_dataset(web, base_model, frozen_dataset, atlas_dataset):
    from generation.curator_views import preset_for_dataset

    assert preset_for_dataset(frozen_dataset) == "gazetteer-001"  # landscapes, no annotations
    assert preset_for_dataset(atlas_dataset) == "atlas-000"
    page = web.get(f"/curator/generation/runs/new/?dataset={atlas_dataset.pk}")
    text = page.content.decode()
    assert page.context["form"]["preset"] == "atlas-000"
    assert 'id="preset-atlas-000" name="preset" value="atlas-000"' in text
    assert "fits this dataset" in text and "unet_attention" in text
    # Each preset's table shows what it will be on this dataset: its resolution, its trigger.
    atlas_row = next(r for r in page.context["presets"] if r["preset"].key == "atlas-000")
    assert atlas_row["values"]["resolution"] == 32 and atlas_row["values"]["trigger_token"] == "[U]"
    # Submitting the form untouched queues an Atlas (U-Net only) run on the Atlas set.
    response = web.post(
        "/curator/generation/runs/new/",
        {"dataset": atlas_dataset.pk, "preset": page.context["form"]["preset"], "settings": "{}"},
    )
    assert response.status_code == 302
    run = TrainingRun.objects.get()
    assert run.preset == "atlas-000" and run.settings["target"] == "unet_attention"
    landscapes = web.get(f"/curator/generation/runs/new/?dataset={frozen_dataset.pk}")
    assert landscapes.context["form"]["preset"] == "gazetteer-001"


def test_drafts_are_named_not_offered(web, base_model):
    from heritage import services

    collection = services.collection_create(slug="c", title={"en": "C"})
    item = services.item_create(collection=collection, accession_number="C-1", title={"en": "C"})
    services.item_image_create(
        item=item, content=striped_png(1), filename="c.png", derivatives="none"
    )
    services.training_dataset_create(
        name="draft", collections=["c"], include_unpublished=True, resolution=32
    )
    text = web.get("/curator/generation/runs/new/").content.decode()
    assert "No dataset is frozen yet" in text and "draft v1" in text


def test_a_sweep_is_made_on_a_page_and_compared_live(web, base_model, frozen_dataset):
    bad = web.post(
        "/curator/generation/sweeps/new/",
        {
            "name": "s",
            "dataset": frozen_dataset.pk,
            "settings": "{}",
            "grid_key": ["rank"],
            "grid_values": ["0 4"],
        },
    )
    assert bad.status_code == 400 and "rank=0" in bad.content.decode()
    assert not Sweep.objects.exists() and not Job.objects.exists()
    response = web.post(
        "/curator/generation/sweeps/new/",
        {
            "name": "batch x lr",
            "dataset": frozen_dataset.pk,
            "settings": '{"max_steps": 2}',
            "grid_key": ["train_batch_size", "unet_lr", ""],
            "grid_values": ["1 2", "1e-4", ""],
        },
    )
    sweep = Sweep.objects.get()
    assert response["Location"] == f"/curator/generation/sweeps/{sweep.pk}/"
    assert sweep.grid == {"train_batch_size": [1, 2], "unet_lr": [0.0001]}
    assert sweep.preset == "gazetteer-001"  # the dataset's
    runs = list(sweep.runs.order_by("pk"))
    assert len(runs) == 2
    page = web.get(response["Location"]).content.decode()
    assert f'hx-get="/curator/generation/sweeps/{sweep.pk}/" hx-trigger="every 3s"' in page
    for run, curve in zip(runs, ([[1, 0.9], [2, 0.6]], [[1, 0.8], [2, 0.7]]), strict=True):
        Job.objects.filter(pk=run.job_id).update(
            status="running", data={"step": 2, "total_steps": 4, "loss_curve": curve}
        )
    fragment = web.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<div id="sweep-live"') and "<html" not in fragment
    svg = web.get(f"/curator/generation/sweeps/{sweep.pk}/loss.svg").content.decode()
    assert "train_batch_size=1, unet_lr=0.0001" in svg and "train_batch_size=2" in svg
    # Once every run has finished the page stops polling.
    Job.objects.filter(pk__in=[r.job_id for r in runs]).update(status="succeeded")
    assert (
        "hx-trigger" not in web.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    )


def noise_png(seed: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _image(request, condition, seed):
    from archives.services import stored_file_save

    return GeneratedImage.objects.create(
        request=request,
        seed=seed,
        condition=condition,
        prompt="[U], a lake",
        width=32,
        height=32,
        # Noise: nothing like the striped training images (the near-copy check passes).
        file=stored_file_save(
            name=f"generation/tests/q-{condition}-{seed}.png", content=noise_png(seed)
        ),
    )


def test_the_approval_queue_lists_lora_images_with_reasons(web, base_model, frozen_dataset):
    from evaluation import services as evaluation_services

    expert = make_user("ex", "expert")
    run = TrainingRun.objects.create(
        name="lora",
        dataset=frozen_dataset,
        base_model=base_model,
        settings={},
        job=Job.objects.create(kind="generation.train", status="succeeded", timeout=60),
    )
    request = GenerationRequest.objects.create(
        prompt="a lake",
        final_prompt="[U], a lake",
        base_model=base_model,
        training_run=run,
        seeds=[1],
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
    )
    base, lora, unrated = (
        _image(request, "base", 1),
        _image(request, "lora", 1),
        _image(request, "lora", 2),
    )
    panel = evaluation_services.panel_create(name="p", members=[expert])
    study = evaluation_services.study_create(title="t", panel=panel, generated_images=[base, lora])
    page = web.get("/curator/evaluation/approvals/")
    text = page.content.decode()
    assert f'id="gen-{base.pk}"' not in text and f'id="gen-{unrated.pk}"' not in text
    assert [r["image"] for r in page.context["refused"]] == [lora]
    assert "open study" in page.context["refused"][0]["reason"]
    assert "Approve for the kiosk</button>" not in text
    refused = web.post(f"/curator/evaluation/approvals/{lora.pk}/", {"approved": "1"}, follow=True)
    assert "open expert study" in refused.content.decode()
    evaluation_services.study_close(study=study)
    # Compared with the training images now (else approving queues that check as a job).
    evaluation_services.memorisation_check_images(generated_image_ids=[lora.pk])
    page = web.get("/curator/evaluation/approvals/")
    assert [r["image"] for r in page.context["ready"]] == [lora]
    done = web.post(f"/curator/evaluation/approvals/{lora.pk}/", {"approved": "1"}, follow=True)
    assert "Approved for the kiosk." in done.content.decode()
    lora.refresh_from_db()
    assert lora.approved
    assert [r["image"] for r in web.get("/curator/evaluation/approvals/").context["approved"]] == [
        lora
    ]


def test_panels_are_made_and_changed_on_a_page(web):
    from evaluation.models import Panel

    a, b = make_user("ea", "expert"), make_user("eb", "expert")
    not_expert = make_user("nobody")
    response = web.post("/curator/evaluation/panels/", {"name": "", "members": [a.pk]})
    assert response.status_code == 400 and not Panel.objects.exists()
    web.post("/curator/evaluation/panels/", {"name": "Weavers", "members": [a.pk, not_expert.pk]})
    panel = Panel.objects.get()
    assert list(panel.members.all()) == [a]  # only experts are offered and kept
    web.post(f"/curator/evaluation/panels/{panel.pk}/members/", {"members": [b.pk]})
    assert list(panel.members.all()) == [b]


CURATOR_PAGES = r"""
import json, sys
import django
django.setup()
from django.contrib.auth.models import User
from django.test import Client
client = Client()
client.force_login(User.objects.get(username=sys.argv[1]))
codes = {path: client.get(path).status_code for path in sys.argv[2:]}
print(json.dumps({"codes": codes, "heavy": sorted(
    m for m in ("torch", "diffusers", "transformers", "peft", "bitsandbytes") if m in sys.modules
)}))
"""


@pytest.mark.django_db(transaction=True)
def test_curator_pages_and_charts_never_import_torch(base_model, frozen_dataset):
    """matplotlib draws the charts in the web process; torch stays out of it."""
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT, worker_environment

    make_user("cur-sub", "curator", is_staff=True)
    run = TrainingRun.objects.create(
        name="r",
        dataset=frozen_dataset,
        base_model=base_model,
        settings={},
        loss_log=[{"step": s, "epoch": 1 + s // 5, "loss": 1 / s} for s in range(1, 20)],
        job=Job.objects.create(kind="generation.train", status="succeeded", timeout=60),
    )
    paths = [
        "/curator/",
        "/curator/catalogue/",
        "/curator/catalogue/datasets/",
        f"/curator/catalogue/datasets/{frozen_dataset.pk}/",
        "/curator/catalogue/import/",
        "/curator/generation/runs/new/",
        f"/curator/generation/runs/{run.pk}/",
        f"/curator/generation/runs/{run.pk}/loss.svg",
        "/curator/generation/sweeps/new/",
        "/curator/evaluation/panels/",
        "/curator/evaluation/approvals/",
    ]
    result = subprocess.run(
        [sys.executable, "-c", CURATOR_PAGES, "cur-sub", *paths],
        cwd=ROOT,
        env=dict(worker_environment(), DJANGO_SETTINGS_MODULE="config.settings"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(answer["codes"].values()) == {200}, answer["codes"]
    assert answer["heavy"] == []
