"""Issue 16: run pages tell the truth (CPU memory on CPU runs, final loss as a mean beside the
last step) and settings that cannot apply on the worker are said before queueing."""

from __future__ import annotations

import pytest
from django.test import Client

from generation.models import TrainingRun

pytestmark = pytest.mark.django_db


def test_half_precision_on_a_cpu_worker_and_an_oversized_batch_are_warned(
    curator_client, base_model, frozen_dataset, settings
):
    settings.ATELIER_WORKER_GPU_GIB = 0  # a CPU worker
    response = curator_client.post(
        "/api/v1/training-runs/",
        {
            "dataset": frozen_dataset.pk,
            "preset": "atlas-000",
            "settings": {"mixed_precision": "fp16", "train_batch_size": 8, "resolution": 32},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    note = response.json()["memory_note"]
    assert "mixed_precision fp16 applies on a GPU only" in note and "float32" in note
    assert "train_batch_size 8 is larger than the 3 training examples" in note
    # Plain settings on the same worker: no such warning.
    plain = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "preset": "atlas-000", "settings": {"resolution": 32}},
        format="json",
    )
    assert plain.status_code == 201 and "Warning" not in plain.json()["memory_note"]


def test_cpu_run_page_shows_cpu_memory_and_the_mean_final_loss(curator, base_model, frozen_dataset):
    run = TrainingRun.objects.create(
        dataset=frozen_dataset,
        base_model=base_model,
        final_loss=0.1234,
        peak_memory_bytes=3 * 1024**3,
        estimated_memory_bytes=0,
        metrics={
            "peak_memory_kind": "cpu_rss_peak",
            "final_loss_last_step": 0.3456,
            "final_loss_window": 20,
        },
    )
    web = Client()
    web.force_login(curator)
    html = web.get(f"/curator/generation/runs/{run.pk}/").content.decode()
    assert "Memory (CPU run)" in html and "3.0\xa0GB of process memory" in html
    assert "GPU memory" not in html and "0\xa0bytes" not in html
    assert "0.12340" in html and "mean of the last 20 steps; last step 0.34560" in html


def test_run_facts_have_readable_names_and_nothing_shows_twice(curator, base_model, frozen_dataset):
    note = "No kohya file: unet.add_embedding.proj has no kohya key."
    run = TrainingRun.objects.create(
        dataset=frozen_dataset,
        base_model=base_model,
        final_loss=0.1,
        metrics={
            "steps": 12,
            "epochs": 3,
            "seconds_per_step": 0.123456,
            "device": "cpu",
            "precision": "float32",
            "peak_memory_kind": "cpu_rss_peak",
            "final_loss_last_step": 0.2,
            "final_loss_window": 12,
            "kohya_note": note,
            "clip_score": 0.5,  # a fact from some other metrics source
        },
    )
    web = Client()
    web.force_login(curator)
    html = web.get(f"/curator/generation/runs/{run.pk}/").content.decode()
    for shown in (
        "<dt>Optimizer steps</dt><dd>12</dd>",
        "<dt>Seconds per step</dt><dd>0.1235</dd>",
        "<dt>Precision</dt><dd>float32</dd>",
        "<dt>Clip score</dt><dd>0.5</dd>",
    ):
        assert shown in html
    assert html.count(note) == 1
    for raw in ("Peak memory kind", "Final loss window", "Kohya note", "cpu_rss_peak"):
        assert raw not in html
