"""Registering a single-file SD 1.x checkpoint through the API: what is refused before any
job (a truncated file). Loading it once is the registration job's: test_base_model_registration."""

from __future__ import annotations

import pytest

from generation.models import BaseModel
from tests.generation.diffusion.original_layout import save_original_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tiny_model_dir):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, local_files_only=True)
    folder = tmp_path_factory.mktemp("single-file-api")
    return save_original_checkpoint(pipe, folder / "tiny-original.safetensors")


def test_a_truncated_single_file_is_refused_before_loading(curator_client, checkpoint, tmp_path):
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:100_000])
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "cut", "path": str(truncated)}, format="json"
    )
    assert response.status_code == 400
    assert "cut.safetensors: the file is truncated" in response.content.decode()
    assert not BaseModel.objects.exists()
