"""Kiosk approval is safe: near copies of training images and images in open blind studies are
refused (nothing changed); other images are approved after a memorisation check."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from archives.services import stored_file_read, stored_file_save
from evaluation.models import MemorisationCheck
from generation.models import GeneratedImage, GenerationRequest
from heritage.selectors import dataset_examples
from jobs.models import Job
from jobs.queue import run_job

pytestmark = pytest.mark.django_db


def noise_png(seed: int, size: int = 32) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def make_image(finished_run):
    """A LoRA image of ``finished_run`` (trained on the striped ``frozen_dataset``)."""
    request = GenerationRequest.objects.create(
        prompt="silk",
        final_prompt="[U], silk",
        base_model=finished_run.base_model,
        training_run=finished_run,
        seeds=[1, 2, 3],
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
    )

    def make(content: bytes, seed: int = 1) -> GeneratedImage:
        return GeneratedImage.objects.create(
            request=request,
            file=stored_file_save(name=f"generation/tests/approval-{seed}.png", content=content),
            seed=seed,
            condition="lora",
            prompt="[U], silk",
            width=32,
            height=32,
        )

    return make


def approve(client, image, approved=True):
    return client.post(
        f"/api/v1/generated-images/{image.pk}/approve/", {"approved": approved}, format="json"
    )


def approve_queued(client, image) -> Job:
    """Approve an image not yet compared with the training images: 202 and a job, which
    compares and then approves (run here, as a worker would)."""
    response = approve(client, image)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["image"] == image.pk and body["job_url"] == f"/api/v1/jobs/{body['job']}/"
    job = Job.objects.get(pk=body["job"])
    assert (job.kind, job.status) == ("evaluation.approval_check", "queued")
    image.refresh_from_db()
    assert not image.approved  # nothing changes before the job has run
    assert approve(client, image).json()["job"] == body["job"]  # asked again: the same job
    run_job(str(job.pk))
    job.refresh_from_db()
    return job


def test_an_ordinary_image_is_checked_then_approved(curator_client, make_image):
    image = make_image(noise_png(0))
    assert not MemorisationCheck.objects.filter(generated=image).exists()
    job = approve_queued(curator_client, image)
    assert job.status == "succeeded", job.error
    assert job.message == "Approved for the kiosk."
    check = MemorisationCheck.objects.get(generated=image)  # checked by the job
    assert check.near_copy is False and check.n_compared == 4
    image.refresh_from_db()
    assert image.approved and image.approved_by is not None
    # Visitors see it now.
    public = curator_client.__class__().get("/api/v1/generated-images/").json()
    assert [row["id"] for row in public["results"]] == [image.pk]


def test_a_near_copy_of_a_training_image_is_refused(curator_client, make_image, frozen_dataset):
    crop = dataset_examples(frozen_dataset, split="train").first().crop
    image = make_image(stored_file_read(crop))  # the LoRA reproduced a training crop
    job = approve_queued(curator_client, image)
    assert job.status == "failed" and "near copy of a training image" in job.error
    image.refresh_from_db()
    assert not image.approved and image.approved_by is None and image.approved_at is None
    assert MemorisationCheck.objects.get(generated=image).near_copy is True
    # Checked now: asking again is refused at once. Withdrawing is always allowed.
    response = approve(curator_client, image)
    assert response.status_code == 400
    assert "near copy of a training image" in response.json()["detail"]
    assert approve(curator_client, image, approved=False).status_code == 200


def test_an_image_in_an_open_study_waits_until_the_study_closes(curator_client, make_image, expert):
    from evaluation.services import panel_create, study_close, study_create

    image = make_image(noise_png(1), seed=2)
    other = make_image(noise_png(2), seed=3)
    panel = panel_create(name="panel", members=[expert])
    study = study_create(title="blind", panel=panel, generated_images=[image, other])
    response = approve(curator_client, image)
    assert response.status_code == 400
    assert "open expert study" in response.json()["detail"]
    image.refresh_from_db()
    assert not image.approved
    assert not MemorisationCheck.objects.filter(generated=image).exists()

    study_close(study=study)
    assert approve_queued(curator_client, image).status == "succeeded"
    image.refresh_from_db()
    assert image.approved


def test_the_page_shows_the_refusal(client, curator, make_image, frozen_dataset):
    crop = dataset_examples(frozen_dataset, split="train").first().crop
    image = make_image(stored_file_read(crop))
    client.force_login(curator)
    url = f"/curator/generation/images/{image.pk}/approve/"
    response = client.post(url, {"approved": "1"})
    assert response.status_code == 302  # to the page of the job that checks it first
    job = Job.objects.get(kind="evaluation.approval_check")
    assert response["Location"].startswith(f"/jobs/{job.pk}/?next=")
    run_job(str(job.pk))
    page = client.get(response["Location"]).content.decode()
    assert "near copy of a training image" in page and "hx-get" not in page
    # Checked now: the refusal is said at once, on the request's page.
    response = client.post(url, {"approved": "1"}, follow=True)
    assert response.status_code == 200
    assert "near copy of a training image" in response.content.decode()
    image.refresh_from_db()
    assert not image.approved
