"""`manage.py demo_workflow` end to end through the apps, on a tiny scale, with a real worker.

Catalogue -> frozen Atlas dataset -> training run -> compare-with-base requests for the held-out
captions -> evaluation study and its metrics job -> the printed table. Whether the LoRA wins is
not asserted: at two epochs it has barely moved.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from safetensors import safe_open

from archives.services import stored_file_read
from evaluation.models import MetricResult, Study
from evaluation.selectors import study_report
from generation.models import GeneratedImage, GenerationRequest, TrainingRun
from heritage.models import TrainingDataset
from jobs.queue import worker_identity

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_demo_workflow_through_the_apps_with_a_worker(start_worker, tmp_path):
    from tests.conftest import make_user

    expert_login = make_user("expert", "expert")  # the demo login ./atelier run makes
    worker = start_worker(("default", "gpu"))
    out = io.StringIO()
    result_file = tmp_path / "result.json"
    call_command(
        "demo_workflow",
        "--jobs=worker",
        "--atlas=6",
        "--landscapes=0",
        "--image-size=64",
        "--epochs=2",
        '--training-json={"validation_steps": 3}',
        "--steps=3",
        "--seeds",
        "0",
        "7",
        f"--json={result_file}",
        stdout=out,
    )
    text = out.getvalue()
    result = json.loads(result_file.read_text())

    # The catalogue's frozen Atlas dataset, with its held-out (validation) split.
    dataset = TrainingDataset.objects.get(name="Atlas demo set")
    assert dataset.frozen and dataset.resolution == 64
    heldout = list(dataset.examples.filter(split="validation"))
    assert len(heldout) == 1 and dataset.examples.filter(split="train").count() == 5

    # A succeeded training run, trained by the worker, with both LoRA files.
    run = TrainingRun.objects.get(pk=result["run_id"])
    assert run.status == "succeeded" and run.dataset == dataset and run.preset == "atlas-000"
    assert run.job.worker_name and run.job.worker_name != worker_identity(), worker.output()
    assert run.settings["epochs"] == 2 and run.settings["caption_dropout"] == 0.1
    # --epochs replaces the demo's fixed step count: 2 epochs of 5 images at batch 2 = 6 steps.
    assert run.settings["max_steps"] is None
    assert max(p["step"] for p in run.loss_log) == 6
    # The demo LoRA ("unet_all") has time/add-embedding layers kohya files cannot hold: no
    # kohya file, and a note the run page shows.
    assert run.lora_kohya is None and "unet.add_embedding.proj" in run.metrics["kohya_note"]
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.utils.html import escape

    page = Client()
    page.force_login(get_user_model().objects.create_superuser("note-reader", password="x"))
    html = page.get(f"/curator/generation/runs/{run.pk}/").content.decode()
    assert escape(run.metrics["kohya_note"]) in html
    for stored in (run.lora_diffusers,):
        path = tmp_path / stored.name.replace("/", "_")
        path.write_bytes(stored_file_read(stored))
        with safe_open(str(path), "pt") as f:
            assert any("lora" in key for key in f.keys())

    # Base + LoRA images for the held-out caption, the same seeds in both conditions.
    (request,) = GenerationRequest.objects.filter(pk__in=result["request_ids"])
    assert request.compare_with_base and request.training_run == run
    assert request.item == heldout[0].image.item
    assert request.job.worker_name != worker_identity()
    images = GeneratedImage.objects.filter(request=request)
    assert sorted((i.seed, i.condition) for i in images) == [
        (0, "base"),
        (0, "lora"),
        (7, "base"),
        (7, "lora"),
    ]
    assert request.contact_sheet_id is not None

    # The evaluation study's metrics: one row per condition, against the held-out original.
    study = Study.objects.get(pk=result["study_id"])
    assert MetricResult.objects.filter(study=study).count() == 4
    table = {row["condition"]: row for row in study_report(study, n_boot=10)["metrics"]}
    assert set(table) == {"base", "lora"}
    for row in table.values():
        assert row["n_pairs"] == 2
        assert row["mse_mean"] > 0 and 0 < row["psnr_mean"] < 60 and -1 <= row["ssim_mean"] <= 1

    # What the curator reads: the table and where to look in the app.
    assert "| base (demo model) | 2 |" in text and "| base + Atlas LoRA | 2 |" in text
    # ... and beside it what real Atlas cloth (the 5 training images vs the 1 held-out original)
    # and a flat image of the original's mean colour score: 5 and 1 pairs.
    assert "| *reference:* real Atlas silk (training images vs held-out) | 5 |" in text
    assert "| *reference:* flat image of the original's mean colour | 1 |" in text
    # The references it compared with (the held-out original, split validation) and the
    # protocols, named (issue 16).
    assert "References of the metrics (declared on the study):" in text
    assert f"image {heldout[0].image_id} (" in text and "split validation" in text
    assert "  - held_out: Held-out:" in text and "  - distribution:" in text
    assert "distribution, lora (run " in text and "KID / CLIP: not configured" in text
    assert f"/curator/generation/runs/{run.pk}/" in text
    assert f"/curator/generation/requests/{request.pk}/" in text
    assert f"/evaluation/studies/{study.pk}/report/" in text
    # Every printed URL opens for the user it is printed for.
    curator_page, expert_page = Client(), Client()
    curator_page.force_login(make_user("curator", "curator", is_staff=True))
    expert_page.force_login(expert_login)
    urls = result["urls"]
    for url in [urls["home"], urls["run"], *urls["requests"], urls["report"], urls["approvals"]]:
        assert url in text and curator_page.get(url).status_code == 200, url
    assert urls["study"] in text and expert_page.get(urls["study"]).status_code == 200
    assert "as the expert (user `expert`" in text
