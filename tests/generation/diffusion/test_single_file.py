"""Single-file SD 1.x checkpoints (original CompVis / A1111 key layout) load offline.

The checkpoint is the tiny model written in the original layout (tests/.../original_layout.py),
so the whole from_single_file path runs on a real file with no download.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from generation.diffusion.pipeline import (
    BaseModelError,
    base_model_kind,
    load_base_pipeline,
    validate_base_model,
)
from tests.generation.diffusion.original_layout import save_original_checkpoint


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """(the tiny diffusers folder, the same weights as one original-layout .safetensors)."""
    from generation.diffusion.tiny import build_tiny_pipeline

    root = tmp_path_factory.mktemp("single-file")
    pipe = build_tiny_pipeline(root / "tiny", seed=0, sample_size=32)
    checkpoint = save_original_checkpoint(pipe, root / "tiny-original.safetensors")
    return root / "tiny", checkpoint


def _images(pipe) -> np.ndarray:
    import torch

    return pipe(
        "a silk pattern with birds",
        num_inference_steps=3,
        guidance_scale=7.0,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(7),
        output_type="np",
    ).images


def test_the_checkpoint_has_the_original_key_layout(models):
    from safetensors import safe_open

    _, checkpoint = models
    with safe_open(str(checkpoint), "pt") as handle:
        keys = set(handle.keys())
    # The names diffusers' own single-file detection looks for (SD 1.x).
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.input_blocks.2.0.op.weight" in keys  # the downsampler
    assert any(
        k.startswith("model.diffusion_model.output_blocks.0.1.transformer_blocks.0.attn2.to_k")
        for k in keys
    )
    assert "first_stage_model.decoder.mid.attn_1.q.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight" in keys
    assert not any(".resnets." in k or "down_blocks" in k for k in keys)
    assert base_model_kind(checkpoint) == "single_file"


def test_single_file_loads_offline_with_identical_weights_and_images(models):
    import torch

    folder, checkpoint = models
    reference = load_base_pipeline(folder)
    single = load_base_pipeline(checkpoint, config_dir=folder)
    for name in ("unet", "vae", "text_encoder"):
        expected = getattr(reference, name).state_dict()
        loaded = getattr(single, name).state_dict()
        assert set(loaded) == set(expected), name
        for key, value in expected.items():
            assert torch.equal(loaded[key], value), f"{name}: {key}"
    assert dict(single.scheduler.config) == dict(reference.scheduler.config)
    assert single.tokenizer.model_max_length == 77 and single.safety_checker is None
    np.testing.assert_array_equal(_images(single), _images(reference))


def test_a_configs_folder_beside_the_file_is_used_by_every_loader(models, tmp_path):
    """``<stem>.config/`` next to the checkpoint: no config_dir argument needed (train, render,
    register all call load_base_pipeline(path))."""
    folder, checkpoint = models
    local = tmp_path / "heritage-base.safetensors"
    shutil.copyfile(checkpoint, local)
    config = tmp_path / "heritage-base.config"
    shutil.copytree(folder, config, ignore=shutil.ignore_patterns("*.safetensors"))
    info = validate_base_model(local)
    assert info.kind == "single_file" and info.resolution == 32
    assert info.parameters["text_encoder"] > 0


def test_without_configs_the_file_is_read_as_sd15_and_a_size_mismatch_is_explained(models):
    # No config folder: SD 1.5's configs (offline). The tiny weights do not fit them, and the
    # error says the file could not be loaded instead of reaching for the hub.
    _, checkpoint = models
    with pytest.raises(BaseModelError, match=r"could not be loaded as SD 1\.x") as refused:
        load_base_pipeline(checkpoint)
    assert "tensor sizes differ from the configs used (SD 1.5)" in str(refused.value)
    assert "tiny-original.config/ beside the file" in str(refused.value)


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt"])
def test_pickled_single_files_are_refused_unread(models, tmp_path, suffix):
    _, checkpoint = models
    pickled = tmp_path / f"model{suffix}"
    shutil.copyfile(checkpoint, pickled)  # even real weights under a pickle suffix
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        base_model_kind(pickled)
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        load_base_pipeline(pickled, config_dir=models[0])


def test_a_truncated_or_foreign_safetensors_is_refused_clearly(models, tmp_path):
    import torch
    from safetensors.torch import save_file

    folder, checkpoint = models
    data = checkpoint.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    # Named from the header alone (no torch): the web process checks this before loading.
    with pytest.raises(BaseModelError, match=r"truncated\.safetensors: the file is truncated"):
        base_model_kind(truncated)
    with pytest.raises(BaseModelError, match=r"truncated\.safetensors: the file is truncated"):
        load_base_pipeline(truncated, config_dir=folder)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(BaseModelError, match=r"garbage\.safetensors: not a safetensors file"):
        base_model_kind(garbage)
    foreign = tmp_path / "foreign.safetensors"  # valid safetensors, not a Stable Diffusion model
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(foreign))
    with pytest.raises(BaseModelError, match=r"foreign\.safetensors: could not be loaded"):
        validate_base_model(foreign, config_dir=folder)


def test_the_default_path_writes_configs_and_uses_the_committed_tokenizer(models, monkeypatch):
    """No config folder at all: the inline SD 1.5 configs + committed tokenizer path, here with
    the inline configs swapped for the tiny model's sizes (SD 1.5 itself is gigabytes)."""
    import json

    from generation.diffusion import pipeline

    folder, checkpoint = models

    def config(name: str, file: str = "config.json") -> dict:
        values = json.loads((folder / name / file).read_text())
        return {k: v for k, v in values.items() if not k.startswith("_")}

    monkeypatch.setattr(pipeline, "SD15_UNET_CONFIG", config("unet"))
    monkeypatch.setattr(pipeline, "SD15_VAE_CONFIG", config("vae"))
    monkeypatch.setattr(pipeline, "SD15_TEXT_ENCODER_CONFIG", config("text_encoder"))
    single = load_base_pipeline(checkpoint)
    reference = load_base_pipeline(folder)
    assert single.tokenizer("silk").input_ids == reference.tokenizer("silk").input_ids
    assert single.scheduler.config.timestep_spacing == "leading"
    np.testing.assert_array_equal(_images(single), _images(reference))
