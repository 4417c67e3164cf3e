"""Base models: local diffusers folders load offline; broken or pickled ones are refused."""

from __future__ import annotations

import shutil

import pytest

from generation.diffusion.pipeline import (
    BaseModelError,
    base_model_kind,
    base_model_sha256,
    load_base_pipeline,
    validate_base_model,
    write_sd15_config_dir,
)
from tests.generation.diffusion.lora_helpers import save_tiny_base


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("pipeline") / "model")


def test_a_diffusers_folder_validates_and_loads(base):
    info = validate_base_model(base)
    assert info.kind == "diffusers" and info.resolution == 32
    assert set(info.parameters) == {"unet", "vae", "text_encoder"}
    assert info.sha256 == base_model_sha256(base) and len(info.sha256) == 64
    pipe = load_base_pipeline(base)
    assert pipe.tokenizer.model_max_length == 77 and pipe.safety_checker is None


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickled_checkpoints_are_refused_with_the_reason(tmp_path, suffix):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x80\x04never unpickled")
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        base_model_kind(path)
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        load_base_pipeline(path)


def test_missing_component_and_missing_path(base, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(base, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(BaseModelError, match="missing component folders: vae"):
        validate_base_model(broken)
    with pytest.raises(BaseModelError, match="no such file or folder"):
        base_model_kind(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BaseModelError, match=r"model_index\.json is missing"):
        base_model_kind(tmp_path / "empty")
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(BaseModelError, match=r"must be a \.safetensors checkpoint"):
        base_model_kind(tmp_path / "model.onnx")


def test_a_folder_with_only_pickled_weights_is_refused(base, tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(base, pickled)
    weights = pickled / "unet" / "diffusion_pytorch_model.safetensors"
    weights.rename(weights.with_suffix(".bin"))
    with pytest.raises(BaseModelError, match=r"unet/ has no .safetensors weights \(only pickled"):
        base_model_kind(pickled)


def test_single_file_uses_local_sd15_configs_and_refuses_a_broken_file(tmp_path):
    config_dir = write_sd15_config_dir(tmp_path / "sd15")
    assert (config_dir / "unet" / "config.json").is_file()
    assert (config_dir / "tokenizer" / "vocab.json").is_file()
    broken = tmp_path / "model.safetensors"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(BaseModelError, match=r"not a safetensors file"):
        base_model_kind(broken)
    with pytest.raises(BaseModelError, match=r"not a safetensors file"):
        load_base_pipeline(broken)
