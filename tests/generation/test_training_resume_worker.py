"""A training run survives its worker being SIGKILLed: the reconciler re-queues the job and a
new worker resumes from the newest stored checkpoint, numbering epochs and steps on."""

from __future__ import annotations

import pytest

from generation.models import TrainingCheckpoint, TrainingRun
from jobs.models import Job
from jobs.reconcile import jobs_reconcile
from tests.conftest import wait_for
from tests.generation.conftest import striped_png

# x 2 images, batch 1: 50 steps (~0.03 s each), so the kill lands long before the end.
EPOCHS = 25


@pytest.fixture
def two_image_dataset(db):
    from heritage import services

    collection = services.collection_create(slug="pair", title={"en": "Pair"}, published=True)
    for index in range(2):
        item = services.item_create(
            collection=collection,
            accession_number=f"PAIR-{index}",
            title={"en": f"Pair {index}"},
            published=True,
        )
        services.item_image_create(
            item=item, content=striped_png(index), filename=f"{index}.png", derivatives="none"
        )
    dataset = services.training_dataset_create(
        name="pair", resolution=32, collections=["pair"], validation_fraction=0
    )
    return services.training_dataset_freeze(dataset=dataset)


@pytest.mark.worker
def test_a_killed_run_resumes_from_its_stored_checkpoint(
    start_worker, curator_client, base_model, two_image_dataset, monkeypatch
):
    # One torch thread per worker: on a busy 2-core machine more threads spin against each
    # other and a tiny-model step takes ~1 s instead of ~0.03 s.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    response = curator_client.post(
        "/api/v1/training-runs/",
        {
            "dataset": two_image_dataset.pk,
            "settings": {
                "rank": 4,
                "unet_lr": 1e-3,
                "train_batch_size": 1,
                "epochs": EPOCHS,
                "checkpoint_every_epochs": 1,
                "max_checkpoints": EPOCHS,  # every epoch kept (the default caps at 10)
                "validation_prompts": [],  # no validation images: keep it fast
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    run_id, job_id = response.json()["id"], response.json()["job"]

    first = start_worker(("gpu",))
    wait_for(
        lambda: TrainingCheckpoint.objects.filter(run_id=run_id).exists(),
        timeout=180,
        interval=0.02,
        message=first.output(),
    )
    first.process.kill()  # SIGKILL: no handler, no cleanup
    first.process.wait()  # reaped, so its pid is gone
    job = Job.objects.get(pk=job_id)
    assert job.status == "running", f"the run ended before the kill: {job.status}"
    stored_steps = sorted(TrainingCheckpoint.objects.filter(run_id=run_id).values_list("step"))
    assert TrainingRun.objects.get(pk=run_id).status == "running"

    report = jobs_reconcile()
    assert report["requeued_orphaned"] == 1
    job.refresh_from_db()
    assert job.status == "queued" and "died" in job.message and job.attempts == 1

    second = start_worker(("gpu",))
    job = wait_for(
        lambda: (j := Job.objects.get(pk=job_id)).is_finished and j,
        timeout=180,
        message=second.output(),
    )
    assert job.status == "succeeded", job.error
    assert job.attempts == 2

    body = curator_client.get(f"/api/v1/training-runs/{run_id}/").json()
    assert body["status"] == "succeeded"
    # Resumed from the newest checkpoint stored before the kill (at least epoch 1's).
    resumed = body["metrics"]["resumed_from_step"]
    assert resumed > 0 and (resumed,) in stored_steps and resumed == max(stored_steps)[0]
    assert body["metrics"]["steps"] == 2 * EPOCHS and body["metrics"]["epochs"] == EPOCHS
    # One continuous numbering: every step once, in order, each in its own epoch.
    steps = [p["step"] for p in body["loss_log"]]
    assert steps == list(range(1, 2 * EPOCHS + 1))
    assert [p["epoch"] for p in body["loss_log"]] == [(s + 1) // 2 for s in steps]
    checkpoints = [(c["epoch"], c["step"]) for c in body["checkpoints"]]
    assert checkpoints == [(e, 2 * e) for e in range(1, EPOCHS + 1)]
    assert body["lora_diffusers"]["sha256"] and body["lora_kohya"]["sha256"]
