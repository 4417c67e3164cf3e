"""Registering a single-file SD 1.x checkpoint through the API (loaded once, offline)."""

from __future__ import annotations

import shutil

import pytest

from generation.diffusion.pipeline import file_sha256
from generation.models import BaseModel
from tests.generation.diffusion.original_layout import save_original_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # The check runs in a child process, which inherits this: any hub access would fail.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, local_files_only=True)
    folder = tmp_path_factory.mktemp("single-file-api")
    return save_original_checkpoint(pipe, folder / "tiny-original.safetensors")


def test_a_single_file_with_its_configs_registers(curator_client, checkpoint, tiny_model_dir):
    config = checkpoint.with_name("tiny-original.config")
    shutil.copytree(tiny_model_dir, config, ignore=shutil.ignore_patterns("*.safetensors"))
    try:
        response = curator_client.post(
            "/api/v1/base-models/", {"name": "tiny file", "path": str(checkpoint)}, format="json"
        )
    finally:
        shutil.rmtree(config)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "single_file" and body["resolution"] == 32
    assert body["sha256"] == file_sha256(checkpoint)
    assert BaseModel.objects.get(name="tiny file").path == str(checkpoint)


def test_a_single_file_that_is_not_sd15_sized_is_refused_with_the_fix(curator_client, checkpoint):
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "tiny file", "path": str(checkpoint)}, format="json"
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "tensor sizes differ" in text and "tiny-original.config/ beside the file" in text
    assert not BaseModel.objects.exists()


def test_a_truncated_single_file_is_refused_before_loading(curator_client, checkpoint, tmp_path):
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:100_000])
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "cut", "path": str(truncated)}, format="json"
    )
    assert response.status_code == 400
    assert "cut.safetensors: the file is truncated" in response.content.decode()
    assert not BaseModel.objects.exists()
