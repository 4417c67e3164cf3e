"""Every refused setting is a 400 with a message, and nothing is queued or written."""

from __future__ import annotations

import pytest
from django.test import Client

from generation.models import BaseModel, GenerationRequest, TrainingRun
from jobs.models import Job

pytestmark = pytest.mark.django_db


def assert_refused(response, *words: str) -> None:
    assert response.status_code == 400, response.content
    text = response.content.decode()
    for word in words:
        assert word in text, (word, text)
    assert Job.objects.count() == 0
    assert TrainingRun.objects.count() == 0
    assert GenerationRequest.objects.count() == 0


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"rank": 0}, ["rank must be between 1 and 256"]),
        ({"unet_lr": 5.0}, ["unet_lr must be above 0"]),
        ({"optimizer": "sgd"}, ["optimizer must be one of"]),
        ({"resolution": 33}, ["resolution must be a multiple of 8"]),
        ({"epochs": 0}, ["epochs must be between 1"]),
        ({"mixed_precision": "fp8"}, ["mixed_precision must be one of"]),
        ({"lernrate": 1e-4}, ["Unknown training settings: lernrate"]),
        (
            {"target": "unet_and_text_encoder", "cache_text_embeddings": True},
            ["cache_text_embeddings needs a frozen text encoder"],
        ),
    ],
)
def test_training_settings_refused(curator_client, base_model, frozen_dataset, settings, words):
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "settings": settings},
        format="json",
    )
    assert_refused(response, *words)


def test_unknown_preset_and_unfrozen_dataset_refused(curator_client, base_model, frozen_dataset):
    from heritage.services import training_dataset_new_version

    response = curator_client.post(
        "/api/v1/training-runs/", {"dataset": frozen_dataset.pk, "preset": "nope"}, format="json"
    )
    assert_refused(response, "preset")
    draft = training_dataset_new_version(dataset=frozen_dataset)
    response = curator_client.post("/api/v1/training-runs/", {"dataset": draft.pk}, format="json")
    assert_refused(response, "not frozen")


def test_memory_preflight_refuses_what_cannot_fit(
    curator_client, curator, base_model, frozen_dataset, settings
):
    # Refused, with the estimate and advice, on a worker far too small for it...
    big = {"resolution": 1024, "train_batch_size": 8}
    settings.ATELIER_WORKER_GPU_GIB = 0.1
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "preset": "atlas-000", "settings": big},
        format="json",
    )
    assert_refused(response, "This run needs about", "1.5x the worker GPU's 0.1 GiB")
    # ...but the estimate is for the registered base model (the tiny test model), not SD 1.5:
    # the 1024 px batch-8 run that SD 1.5 could never fit on 6 GiB is queued for it.
    settings.ATELIER_WORKER_GPU_GIB = 6
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "preset": "atlas-000", "settings": big},
        format="json",
    )
    assert response.status_code == 201, response.content
    estimate = response.json()["estimated_memory_bytes"]
    assert estimate < 6 * 1024**3
    assert "fits in 6 GiB" in response.json()["memory_note"]
    # Near the limit it is a warning the run keeps and shows, not a refusal on a guess.
    settings.ATELIER_WORKER_GPU_GIB = estimate / 1.2 / 1024**3
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "preset": "atlas-000", "settings": big},
        format="json",
    )
    assert response.status_code == 201, response.content
    note = response.json()["memory_note"]
    assert note.startswith("Warning: this run may not fit"), note
    pages = Client()
    pages.force_login(curator)
    page = pages.get(f"/curator/generation/runs/{response.json()['id']}/")
    assert "Warning: this run may not fit" in page.content.decode()
    # The paper's own settings with the memory savers fit a 6 GiB card (an RTX 2060).
    settings.ATELIER_WORKER_GPU_GIB = 6
    response = curator_client.post(
        "/api/v1/training-runs/",
        {
            "dataset": frozen_dataset.pk,
            "preset": "atlas-000",
            "settings": {
                "mixed_precision": "fp16",
                "gradient_checkpointing": True,
                "optimizer": "adamw8bit",
                "resolution": 512,
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["estimated_memory_bytes"] <= 6 * 1024**3


def test_sweep_refuses_bad_cells_and_queues_nothing(curator_client, base_model, frozen_dataset):
    response = curator_client.post(
        "/api/v1/sweeps/",
        {
            "dataset": frozen_dataset.pk,
            "name": "lr sweep",
            "grid": {"train_batch_size": [1, 2], "unet_lr": [8e-4, 3.0]},
        },
        format="json",
    )
    assert_refused(response, "train_batch_size=1, unet_lr=3.0", "unet_lr must be above 0")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"prompt": ""}, ["The prompt is empty"]),
        ({"prompt": "   "}, ["The prompt is empty"]),
        ({"prompt": "mountain " * 80}, ["CLIP tokens long", "at most 75"]),
        ({"prompt": "a river", "width": 36}, ["multiple of 8"]),
        ({"prompt": "a river", "width": 4096, "height": 4096}, ["between"]),
        ({"prompt": "a river", "width": 1536, "height": 1024}, ["too big"]),
        ({"prompt": "a river", "steps": 0}, ["Steps must be between 1 and 150"]),
        ({"prompt": "a river", "steps": 10000}, ["Steps must be between 1 and 150"]),
        ({"prompt": "a river", "cfg": 500}, ["CFG scale must be between 1 and 30"]),
        ({"prompt": "a river", "images": 500}, ["Between 1 and 16 images"]),
        ({"prompt": "a river", "images": 0}, ["Between 1 and 16 images"]),
        ({"prompt": "a river", "sampler": "plms"}, ["sampler"]),
        ({"prompt": "a river", "seeds": [1, 1]}, ["Each seed may appear once"]),
        ({"prompt": "a river", "seeds": [1, 2], "images": 3}, ["3 images asked for but 2 seeds"]),
        ({"prompt": "a river", "seeds": [-1]}, ["seeds"]),
        ({"prompt": "a river", "compare_with_base": True}, ["needs a LoRA"]),
        ({"prompt": "a river", "training_run": 999}, ["No training run with id 999"]),
    ],
)
def test_generation_limits_refused(curator_client, base_model, body, words):
    response = curator_client.post("/api/v1/generation-requests/", body, format="json")
    assert_refused(response, *words)


def test_unfinished_lora_and_passage_without_prompt_refused(
    curator_client, base_model, frozen_dataset
):
    from heritage.services import passage_create

    run = TrainingRun.objects.create(dataset=frozen_dataset, base_model=base_model, settings={})
    response = curator_client.post(
        "/api/v1/generation-requests/",
        {"prompt": "a river", "training_run": run.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "has not finished with a LoRA" in response.content.decode()
    passage = passage_create(source_work="Gazetteer", original_text="山高水长")
    response = curator_client.post(
        "/api/v1/generation-requests/", {"passage": passage.pk}, format="json"
    )
    assert response.status_code == 400
    assert "no approved prompt" in response.content.decode()
    assert Job.objects.count() == 0


def test_only_curators_write(client, expert, base_model):
    from rest_framework.test import APIClient

    anonymous = APIClient()
    assert anonymous.post("/api/v1/generation-requests/", {"prompt": "x"}).status_code in (401, 403)
    as_expert = APIClient()
    as_expert.force_authenticate(expert)
    assert as_expert.post("/api/v1/generation-requests/", {"prompt": "x"}).status_code == 403
    assert as_expert.get("/api/v1/training-runs/").status_code == 403
    assert Job.objects.count() == 0


@pytest.mark.parametrize("name", ["model.ckpt", "model.pt", "model.bin", "model.pth"])
def test_pickled_base_models_refused(curator_client, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really a pickle")
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "evil", "path": str(path)}, format="json"
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "pickle" in text and "arbitrary code" in text
    assert not BaseModel.objects.exists()


def test_folder_with_only_pickled_weights_refused(curator_client, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.rename(weights.with_name("diffusion_pytorch_model.bin"))
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "pickled", "path": str(folder)}, format="json"
    )
    assert response.status_code == 400
    assert "unpickling runs code" in response.content.decode()
    missing = curator_client.post(
        "/api/v1/base-models/", {"name": "gone", "path": str(tmp_path / "nothing")}, format="json"
    )
    assert missing.status_code == 400 and "no such file" in missing.content.decode()
    assert not BaseModel.objects.exists()
