"""Generation through a real gpu worker on the tiny model: PNGs with metadata, base/LoRA pairs."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from archives.services import stored_file_read
from generation.diffusion.png_metadata import parse_a1111_parameters, read_png_metadata
from generation.models import GenerationRequest
from tests.conftest import wait_for


def finished(pk):
    request = GenerationRequest.objects.get(pk=pk)
    return request if request.job.status in ("succeeded", "failed", "cancelled") else None


def pixels(stored) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(stored_file_read(stored))).convert("RGB"))


@pytest.mark.worker
def test_requests_make_tagged_pngs_pairs_and_repeatable_images(
    start_worker, curator_client, finished_run
):
    from heritage.services import passage_create

    passage = passage_create(
        source_work="Gazetteer", original_text="山高水长", approved_prompt="misty mountains"
    )
    pair = curator_client.post(
        "/api/v1/generation-requests/",
        {
            "passage": passage.pk,
            "training_run": finished_run.pk,
            "compare_with_base": True,
            "seeds": [7, 8],
            "steps": 4,
            "cfg": 5,
            "negative_prompt": "blurry",
        },
        format="json",
    ).json()
    assert pair["final_prompt"] == "[U], misty mountains"
    plain = curator_client.post(
        "/api/v1/generation-requests/",
        {"prompt": "misty mountains", "images": 1, "steps": 4, "sampler": "euler"},
        format="json",
    ).json()
    assert len(plain["seeds"]) == 1  # drawn at random and stored
    again = curator_client.post(
        "/api/v1/generation-requests/",
        {
            "passage": passage.pk,
            "training_run": finished_run.pk,
            "seeds": [8],
            "steps": 4,
            "cfg": 5,
            "negative_prompt": "blurry",
        },
        format="json",
    ).json()
    worker = start_worker(("gpu",))
    for pk in (pair["id"], plain["id"], again["id"]):
        request = wait_for(lambda pk=pk: finished(pk), message=worker.output())
        assert request.job.status == "succeeded", request.job.error + worker.output()
        assert request.status == "succeeded"

    body = curator_client.get(f"/api/v1/generation-requests/{pair['id']}/").json()
    assert body["status"] == "succeeded"
    assert {(i["seed"], i["condition"]) for i in body["images"]} == {
        (7, "base"),
        (7, "lora"),
        (8, "base"),
        (8, "lora"),
    }
    assert all(i["label"] == "AI-generated image" for i in body["images"])
    assert body["contact_sheet"]["sha256"]

    request = GenerationRequest.objects.get(pk=pair["id"])
    images = {(i.seed, i.condition): i for i in request.images.all()}
    # Pairs differ only by the LoRA: same seed, different pixels.
    assert not np.array_equal(pixels(images[7, "base"].file), pixels(images[7, "lora"].file))
    # Same request settings and seed -> the same image, in another request and job.
    repeat = GenerationRequest.objects.get(pk=again["id"]).images.get()
    assert np.array_equal(pixels(repeat.file), pixels(images[8, "lora"].file))

    image = images[7, "lora"]
    data = stored_file_read(image.file)
    import hashlib

    assert hashlib.sha256(data).hexdigest() == image.file.sha256
    parameters, provenance = read_png_metadata(data)
    fields = parse_a1111_parameters(parameters)
    assert fields["Prompt"].startswith("[U], misty mountains <lora:")
    assert fields["Negative prompt"] == "blurry"
    assert fields["Steps"] == "4" and fields["Sampler"] == "DDIM" and fields["CFG scale"] == "5"
    assert fields["Seed"] == "7" and fields["Size"] == "32x32"
    assert fields["Model hash"] == request.base_model.sha256[:10]
    # A1111 finds the run's kohya file by its stem and addnet hash (sha256 after the header).
    kohya = stored_file_read(finished_run.lora_kohya)
    stem = finished_run.lora_kohya.name.rsplit("/", 1)[-1].removesuffix(".safetensors")
    addnet = hashlib.sha256(kohya[8 + int.from_bytes(kohya[:8], "little") :]).hexdigest()
    assert fields["Lora hashes"] == f"{stem}: {addnet[:12]}"
    assert fields["Prompt"].endswith(f"<lora:{stem}:1>")
    assert provenance["request_id"] == request.pk
    assert provenance["passage_id"] == passage.pk
    assert provenance["lora"]["sha256"] == finished_run.lora_diffusers.sha256
    assert provenance["base_model"]["sha256"] == request.base_model.sha256
    assert provenance["ai_generated"] is True
    assert "diffusers" in provenance["software"] and "torch" in provenance["software"]
    base_parameters, base_provenance = read_png_metadata(stored_file_read(images[7, "base"].file))
    assert "Lora hashes" not in base_parameters and base_provenance["lora"] is None

    sampler = parse_a1111_parameters(
        read_png_metadata(
            stored_file_read(GenerationRequest.objects.get(pk=plain["id"]).images.get().file)
        )[0]
    )["Sampler"]
    assert sampler == "Euler"
    # The worker loaded the base model once for all three jobs.
    assert GenerationRequest.objects.get(pk=again["id"]).job.result["cache"]["base_loads"] == 1


@pytest.mark.worker
def test_approval_puts_an_image_on_the_public_list(start_worker, curator_client, finished_run):
    from rest_framework.test import APIClient

    created = curator_client.post(
        "/api/v1/generation-requests/",
        {
            "prompt": "a pavilion by a lake",
            "training_run": finished_run.pk,
            "compare_with_base": True,
            "seeds": [3],
            "steps": 2,
            "sampler": "dpmpp",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    created = created.json()
    start_worker(("gpu",))
    wait_for(lambda: finished(created["id"]))
    images = GenerationRequest.objects.get(pk=created["id"]).images
    # The base model's image is not the collection's style: never on the kiosk.
    base = images.get(condition="base")
    refused = curator_client.post(
        f"/api/v1/generated-images/{base.pk}/approve/", {"approved": True}, format="json"
    )
    assert refused.status_code == 400 and "base model" in refused.json()["detail"]
    image = images.get(condition="lora")
    anonymous = APIClient()
    assert anonymous.get("/api/v1/generated-images/").json()["count"] == 0
    response = curator_client.post(
        f"/api/v1/generated-images/{image.pk}/approve/", {"approved": True}, format="json"
    )
    # Not yet compared with the training images: its job compares, then approves.
    assert response.status_code == 202, response.content
    job_url = response.json()["job_url"]
    assert anonymous.get("/api/v1/generated-images/").json()["count"] == 0
    worker = start_worker(("default",))
    job = wait_for(
        lambda: (
            (j := curator_client.get(job_url).json())["status"] in ("succeeded", "failed") and j
        ),
        message=worker.output(),
    )
    assert job["status"] == "succeeded", job["error"]
    listed = anonymous.get("/api/v1/generated-images/").json()["results"]
    assert [i["id"] for i in listed] == [image.pk]
    assert listed[0]["label"] == "AI-generated image"
