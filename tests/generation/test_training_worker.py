"""LoRA training as a gpu job through a real worker: live progress, stored outputs, cancel."""

from __future__ import annotations

import pytest
from django.test import Client
from safetensors import safe_open

from archives.services import stored_file_open, stored_file_read
from generation.models import TrainingRun
from jobs.models import Job
from tests.conftest import wait_for

TINY = {
    "rank": 4,
    "alpha": 8.0,
    "unet_lr": 1e-3,
    "train_batch_size": 1,
    "validation_steps": 2,
    "validation_guidance_scale": 3.0,
}


def job_of(client, run_id) -> dict:
    job_id = client.get(f"/api/v1/training-runs/{run_id}/").json()["job"]
    return client.get(f"/api/v1/jobs/{job_id}/").json()


@pytest.mark.worker
def test_a_run_trains_with_live_progress_and_stores_its_files(
    start_worker, curator, curator_client, base_model, frozen_dataset
):
    response = curator_client.post(
        "/api/v1/training-runs/",
        {
            "dataset": frozen_dataset.pk,
            "preset": "atlas-000",
            "settings": {**TINY, "max_steps": 12, "epochs": 50, "checkpoint_every_epochs": 2},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    run = response.json()
    assert run["status"] == "queued"
    assert run["settings"]["resolution"] == 32  # the dataset's crops
    assert run["settings"]["unet_lr"] == 1e-3  # the curator's value over the preset's 8e-4
    assert run["settings"]["validation_prompts"]  # the validation split's captions
    worker = start_worker(("gpu",))

    # While it runs, the jobs API shows step, loss and the curve so far.
    live = wait_for(
        lambda: (
            (job := job_of(curator_client, run["id"]))["status"] == "running"
            and job["data"].get("step", 0) > 0
            and job
        ),
        message=worker.output(),
    )
    assert 0 < live["progress"] < 1
    assert live["data"]["total_steps"] == 12
    assert live["data"]["loss_curve"] and live["data"]["lr"] > 0
    assert "step" in live["message"] and "loss" in live["message"]

    done = wait_for(
        lambda: (
            (job := job_of(curator_client, run["id"]))["status"]
            in ("succeeded", "failed", "cancelled")
            and job
        ),
        timeout=240,
        message=worker.output(),
    )
    assert done["status"] == "succeeded", done["error"]
    body = curator_client.get(f"/api/v1/training-runs/{run['id']}/").json()
    assert body["status"] == "succeeded"
    assert len(body["loss_log"]) == 12 and body["final_loss"] is not None
    assert body["peak_memory_bytes"] > 0
    # Checkpoints (resumable from storage) every 2 epochs of 3 images (max_steps wins over
    # epochs), and validation images of base model and LoRA for the same prompts and seeds.
    assert [c["step"] for c in body["checkpoints"]] == [6, 12]
    conditions = {v["condition"] for v in body["validation_images"]}
    assert conditions == {"base", "lora"}
    # Validation images are signed like every generated image (issue 22): c2pa's Reader finds
    # an intact manifest; a LoRA one names the checkpoint's LoRA file by its hash.
    from generation.diffusion import content_credentials as cc
    from generation.models import ValidationImage

    for image in ValidationImage.objects.filter(run_id=run["id"]):
        report = cc.read_credentials(stored_file_read(image.file))
        assert report.has_manifest and report.state in ("Valid", "Trusted"), report
    assert set(body["metrics"]) >= {"lora", "base", "steps"}
    assert body["metrics"]["lora"]["ssim"] is not None
    # Beside them, images no model drew against the same validation crop: the 3 training
    # crops, and a flat image of the crop's mean colour.
    assert body["metrics"]["reference_training"]["n"] == 3
    assert body["metrics"]["reference_flat"]["n"] == 1

    run_row = TrainingRun.objects.get(pk=run["id"])
    for stored in (run_row.lora_diffusers, run_row.lora_kohya):
        assert len(stored.sha256) == 64
    with stored_file_open(run_row.lora_kohya) as handle:
        path = handle.name
    with safe_open(path, framework="pt") as kohya:
        header = kohya.metadata()
        keys = list(kohya.keys())
    assert header["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert header["ss_network_alpha"] == "8.0"
    assert any(k.startswith("lora_unet_") for k in keys)
    assert "SILK-0" in header["heritage.accession_numbers"]

    # The curator page shows the validation metrics as a base-vs-LoRA table, rounded.
    web = Client()
    web.force_login(curator)
    page = web.get(f"/curator/generation/runs/{run['id']}/").content.decode()
    ssim = body["metrics"]["lora"]["ssim"]
    assert "<caption>Validation images against" in page
    assert '<th scope="row">reference: training images</th><td>3</td>' in page
    assert f"<td>{ssim:.4f}</td>" in page
    assert repr(ssim) not in page  # no raw 17-digit floats


@pytest.mark.worker
def test_a_running_run_cancels(start_worker, curator_client, base_model, frozen_dataset):
    run = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "settings": {**TINY, "epochs": 5000}},
        format="json",
    ).json()
    worker = start_worker(("gpu",))
    wait_for(
        lambda: job_of(curator_client, run["id"])["data"].get("step", 0) > 0,
        message=worker.output(),
    )
    response = curator_client.post(f"/api/v1/training-runs/{run['id']}/cancel/")
    assert response.status_code == 200
    wait_for(
        lambda: Job.objects.get(pk=run["job"]).status == "cancelled",
        message=worker.output(),
    )
    row = TrainingRun.objects.get(pk=run["id"])
    assert row.status == "cancelled"
    assert row.lora_diffusers is None
    assert 0 < len(row.loss_log) < 5000 * 3
