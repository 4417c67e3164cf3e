"""Registering a single-file SD 1.x checkpoint through the API: what is refused before any
job (a truncated file). Loading it once is the registration job's: test_base_model_registration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generation.models import BaseModel

pytestmark = pytest.mark.django_db


# Written by diffusers' own convert_diffusers_to_original_stable_diffusion.py, its configs in
# tiny-sd1.config/ beside it (tests/fixtures/make_sd1_single_file.py).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def checkpoint(tmp_path):
    """The fixture checkpoint alone in a folder (no configs beside it), as tiny-original."""
    path = tmp_path / "tiny-original.safetensors"
    shutil.copy(FIXTURES / "tiny-sd1.safetensors", path)
    return path


def test_a_truncated_single_file_is_refused_before_loading(curator_client, checkpoint, tmp_path):
    truncated = tmp_path / "cut.safetensors"
    truncated.write_bytes(checkpoint.read_bytes()[:1_000_000])  # header whole, tensors cut
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "cut", "path": str(truncated)}, format="json"
    )
    assert response.status_code == 400
    assert "cut.safetensors: the file is truncated" in response.content.decode()
    assert not BaseModel.objects.exists()
