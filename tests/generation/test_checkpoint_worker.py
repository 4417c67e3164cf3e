"""Held-out loss at every checkpoint through a real worker, and generation from a checkpoint's
LoRA at a scroll shape (issue 20)."""

from __future__ import annotations

import pytest
from django.test import Client

from generation.models import GeneratedImage, TrainingRun
from tests.conftest import wait_for

TINY = {
    "rank": 4,
    "alpha": 8.0,
    "unet_lr": 5e-3,
    "train_batch_size": 1,
    "epochs": 2,
    "checkpoint_every_epochs": 1,
    "validation_prompts": [],
}


def finished(client, url: str, worker) -> dict:
    def done():
        body = client.get(url).json()
        return body["status"] in ("succeeded", "failed", "cancelled") and body

    body = wait_for(done, timeout=300, message=worker.output())
    assert body["status"] == "succeeded", body
    return body


@pytest.mark.worker
def test_checkpoints_keep_held_out_loss_and_lora_for_generation(
    start_worker, curator, curator_client, base_model, frozen_dataset
):
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "settings": TINY},
        format="json",
    )
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    worker = start_worker(("gpu",))
    body = finished(curator_client, f"/api/v1/training-runs/{run_id}/", worker)

    # 3 training images, batch 1: a checkpoint after each epoch, each with the held-out
    # loss of the validation image and its own LoRA file
    checkpoints = body["checkpoints"]
    assert [c["step"] for c in checkpoints] == [3, 6]
    assert all(c["validation_loss"] > 0 and c["lora"]["sha256"] for c in checkpoints)
    assert checkpoints[0]["lora"]["sha256"] != checkpoints[1]["lora"]["sha256"]
    best = min(checkpoints, key=lambda c: (c["validation_loss"], c["step"]))
    assert body["look_first_checkpoint"] == best["id"]

    web = Client()
    web.force_login(curator)
    page = web.get(f"/curator/generation/runs/{run_id}/").content.decode()
    assert f"held-out loss {best['validation_loss']:.4f} <strong>— look at this one first" in page
    assert "LoRA at step 3" in page and "LoRA at step 6" in page
    download = web.get(checkpoints[0]["lora"]["url"])
    assert download.status_code == 200
    assert (
        "held-out loss" in web.get(f"/curator/generation/runs/{run_id}/loss.svg").content.decode()
    )

    # A request names the first checkpoint, at the hanging-scroll shape of the 32 px model.
    requests = []
    for checkpoint in (checkpoints[0]["id"], None):
        response = curator_client.post(
            "/api/v1/generation-requests/",
            {
                "prompt": "striped silk",
                "training_run": run_id,
                "checkpoint": checkpoint,
                "shape": "hanging_scroll",
                "seeds": [7],
                "steps": 3,
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        requests.append(response.json())
    assert requests[0]["checkpoint"] == checkpoints[0]["id"]
    assert (requests[0]["width"], requests[0]["height"]) == (32, 64)
    for request in requests:
        finished(curator_client, f"/api/v1/generation-requests/{request['id']}/", worker)
    early, final = (GeneratedImage.objects.get(request_id=r["id"]) for r in requests)
    assert (early.width, early.height) == (32, 64)
    assert early.file.sha256 != final.file.sha256  # the early epoch's LoRA drew it

    # a checkpoint of another run is refused, naming the field
    other = TrainingRun.objects.create(
        dataset=frozen_dataset, base_model=base_model, settings={}, name="other"
    )
    response = curator_client.post(
        "/api/v1/generation-requests/",
        {"prompt": "x", "training_run": other.pk, "checkpoint": checkpoints[0]["id"]},
        format="json",
    )
    assert response.status_code == 400 and "checkpoint" in response.json()
