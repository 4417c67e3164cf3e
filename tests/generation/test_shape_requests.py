"""Generation requests at scroll shapes and from a checkpoint, through the curator form."""

from __future__ import annotations

import pytest

from archives.services import stored_file_save
from generation.models import GenerationRequest, TrainingCheckpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator_web(client, curator):
    client.force_login(curator)
    return client


def test_the_form_queues_a_hanging_scroll_from_a_checkpoint(curator_web, finished_run):
    stored = stored_file_save(name="generation/tests/ckpt.safetensors", content=b"state")
    checkpoint = TrainingCheckpoint.objects.create(
        run=finished_run,
        epoch=1,
        step=3,
        archive=stored,
        validation_loss=0.25,
        lora=finished_run.lora_diffusers,
    )
    page = curator_web.get("/curator/generation/requests/new/").content.decode()
    assert "epoch 1, step 3, held-out loss 0.2500" in page
    assert '<option value="hanging_scroll">Hanging scroll (1:2)</option>' in page
    response = curator_web.post(
        "/curator/generation/requests/new/",
        {
            "prompt": "a long river",
            "steps": "3",
            "cfg": "7",
            "images": "1",
            "sampler": "ddim",
            "shape": "hanging_scroll",
            "checkpoint": str(checkpoint.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    request = GenerationRequest.objects.get()
    assert (request.width, request.height) == (32, 64)  # the 32 px model's 1:2
    assert request.checkpoint == checkpoint and request.training_run == finished_run


def test_a_shape_and_a_size_together_are_refused(curator_web, base_model):
    response = curator_web.post(
        "/curator/generation/requests/new/",
        {
            "prompt": "a long river",
            "steps": "3",
            "cfg": "7",
            "images": "1",
            "sampler": "ddim",
            "shape": "handscroll",
            "width": "64",
        },
    )
    assert response.status_code == 400
    assert "Give a shape or a width and height, not both." in response.content.decode()
    assert not GenerationRequest.objects.exists()
