"""Curator pages: forms refuse clearly, the run page draws the loss curve, images are labelled."""

from __future__ import annotations

import pytest

from archives.services import stored_file_save
from generation.models import GeneratedImage, GenerationRequest
from jobs.models import Job
from tests.generation.conftest import striped_png

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator_web(client, curator):
    client.force_login(curator)
    return client


def test_pages_are_for_curators(client, expert):
    assert client.get("/curator/generation/").status_code == 302  # to the login page
    client.force_login(expert)
    assert client.get("/curator/generation/").status_code == 403


def test_run_form_shows_every_refusal_and_queues_nothing(curator_web, base_model, frozen_dataset):
    page = curator_web.get("/curator/generation/runs/new/")
    assert page.status_code == 200
    assert "Atlas silk patterns" in page.content.decode()
    response = curator_web.post(
        "/curator/generation/runs/new/",
        {
            "dataset": frozen_dataset.pk,
            "preset": "atlas-000",
            "settings": '{"rank": 0, "epochs": -1}',
        },
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert 'role="alert"' in text
    assert "rank must be between 1 and 256" in text and "epochs must be between 1" in text
    assert Job.objects.count() == 0


def test_run_page_draws_the_live_loss_curve(curator_web, base_model, frozen_dataset):
    response = curator_web.post(
        "/curator/generation/runs/new/",
        {"dataset": frozen_dataset.pk, "preset": "gazetteer-001", "settings": '{"max_steps": 3}'},
    )
    assert response.status_code == 302
    run_url = response["Location"]
    from generation.models import TrainingRun

    run = TrainingRun.objects.get()
    assert run.settings["trigger_token"] == "[U]" and run.settings["optimizer"] == "adamw8bit"
    Job.objects.filter(pk=run.job_id).update(
        status="running",
        progress=0.5,
        message="step 2 of 3",
        data={"step": 2, "total_steps": 3, "loss_curve": [[1, 0.9], [2, 0.5]]},
    )
    text = curator_web.get(run_url).content.decode()
    assert '<progress id="job-progress" max="1" value="0.5"' in text
    assert f'id="loss-chart" class="chart" src="/curator/generation/runs/{run.pk}/loss.svg' in text
    assert f'data-job-url="/api/v1/jobs/{run.job_id}/"' in text
    assert "generation/progress.js" in text
    # The chart itself: matplotlib's SVG with labelled axes, the live points drawn.
    chart = curator_web.get(f"/curator/generation/runs/{run.pk}/loss.svg")
    assert chart["Content-Type"].startswith("image/svg+xml")
    svg = chart.content.decode()
    assert svg.startswith("<svg") and "optimizer step" in svg and "training loss" in svg
    assert "no loss recorded yet" not in svg
    download = curator_web.get(f"/curator/generation/runs/{run.pk}/loss.svg?download=1")
    assert download["Content-Disposition"] == f'attachment; filename="run-{run.pk}-loss.svg"'


def test_request_page_labels_images_and_offers_no_kiosk_for_base(curator_web, base_model):
    request = GenerationRequest.objects.create(
        prompt="a lake",
        final_prompt="a lake",
        base_model=base_model,
        seeds=[5],
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
    )
    GeneratedImage.objects.create(
        request=request,
        # A real PNG (the page shows it).
        file=stored_file_save(name="generation/tests/x.png", content=striped_png(7, 32)),
        seed=5,
        condition="base",
        prompt="a lake",
        width=32,
        height=32,
    )
    text = curator_web.get(f"/curator/generation/requests/{request.pk}/").content.decode()
    assert "AI-generated image, seed 5" in text
    # A base-model image is never offered for the kiosk (the kiosk would credit the LoRA).
    assert "Approve for the kiosk" not in text and "never shown on the kiosk" in text


def test_request_form_refuses_with_messages(curator_web, base_model):
    response = curator_web.post(
        "/curator/generation/requests/new/",
        {"prompt": "", "steps": "35", "cfg": "7", "images": "1", "sampler": "ddim", "width": "30"},
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "The prompt is empty" in text and "multiple of 8" in text
    assert Job.objects.count() == 0


def test_loss_curve_points_are_means_of_consecutive_steps():
    from generation.selectors import loss_curve_points

    # A noisy loss (0 and 1 in turn) over 1,000 steps: 400 sampled steps would zig-zag from 0 to
    # 1; means over equal ranges of 2-3 steps stay within 1/6 of 0.5 and keep the last step.
    log = [{"step": s, "loss": float(s % 2), "lr": 1e-4} for s in range(1, 1001)]
    points = loss_curve_points(log, 400)
    assert len(points) <= 400 and points[-1][0] == 1000
    assert all(abs(loss - 0.5) <= 0.5 / 3 + 1e-9 for _, loss in points[:-1])
    assert [s for s, _ in points] == sorted(s for s, _ in points)
    # Short logs are drawn as they are; missing losses are skipped.
    short = [{"step": 1, "loss": 0.9}, {"step": 2, "loss": None}, {"step": 3, "loss": 0.4}]
    assert loss_curve_points(short, 400) == [[1, 0.9], [3, 0.4]]
    assert loss_curve_points([], 400) == []


def test_a_long_loss_log_is_kept_short_by_merging_neighbours_into_means():
    from generation.selectors import loss_curve_points
    from generation.services import loss_log_append

    log: list[dict] = []
    for step in range(1, 5001):  # 0 and 1 in turn: the mean is 0.5 everywhere
        log = loss_log_append(log, {"step": step, "epoch": 1, "loss": float(step % 2)}, limit=100)
    assert len(log) <= 100 and log[-1]["step"] == 5000
    assert sum(p.get("n", 1) for p in log) == 5000  # every step is counted once
    merged = [p for p in log if p.get("n", 1) >= 4]
    assert merged and all(abs(p["loss"] - 0.5) < 0.2 for p in merged)
    # Drawn in at most 40 points over equal step ranges, weighted by the steps they stand for.
    points = loss_curve_points(log, 40)
    assert len(points) <= 40 and points[-1][0] == 5000
    assert all(abs(loss - 0.5) < 0.2 for _, loss in points[:-1])
