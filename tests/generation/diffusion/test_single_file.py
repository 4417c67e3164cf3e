"""Single-file SD 1.x checkpoints (original CompVis / A1111 key layout) load offline.

The checkpoint, tests/fixtures/tiny-sd1.safetensors, was written by diffusers' own
``scripts/convert_diffusers_to_original_stable_diffusion.py`` from a tiny SD 1.x-shaped
pipeline (tests/fixtures/make_sd1_single_file.py says how); the weights it must load to are
committed beside it (``tiny-sd1.reference.safetensors``), and so are its configs
(``tiny-sd1.config/``), given to the loader as a user would: a folder beside the file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from generation.diffusion.pipeline import (
    BaseModelError,
    base_model_kind,
    load_base_pipeline,
    validate_base_model,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHECKPOINT = FIXTURES / "tiny-sd1.safetensors"
REFERENCE = FIXTURES / "tiny-sd1.reference.safetensors"
CONFIG = FIXTURES / "tiny-sd1.config"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def _images(pipe) -> np.ndarray:
    import torch

    return pipe(
        "a silk pattern with birds",
        num_inference_steps=3,
        guidance_scale=7.0,
        height=128,
        width=128,
        generator=torch.Generator().manual_seed(7),
        output_type="np",
    ).images


def test_the_fixture_has_the_original_key_layout():
    from safetensors import safe_open

    with safe_open(str(CHECKPOINT), "pt") as handle:
        keys = set(handle.keys())
    # The names diffusers' own single-file detection looks for (SD 1.x).
    assert "model.diffusion_model.input_blocks.0.0.weight" in keys
    assert "model.diffusion_model.input_blocks.3.0.op.weight" in keys  # the first downsampler
    assert "model.diffusion_model.output_blocks.3.1.transformer_blocks.0.attn2.to_k.weight" in keys
    assert "first_stage_model.decoder.mid.attn_1.q.weight" in keys
    assert "cond_stage_model.transformer.text_model.embeddings.position_embedding.weight" in keys
    assert not any(".resnets." in k or "down_blocks" in k for k in keys)
    assert base_model_kind(CHECKPOINT) == "single_file"


def test_the_fixture_loads_with_the_weights_it_was_made_from():
    """No config argument: the ``tiny-sd1.config/`` folder beside the file is used."""
    import torch
    from safetensors.torch import load_file

    reference = load_file(str(REFERENCE))
    pipe = load_base_pipeline(CHECKPOINT)
    for name in ("unet", "vae", "text_encoder"):
        loaded = getattr(pipe, name).state_dict()
        expected = {k.split(".", 1)[1]: v for k, v in reference.items() if k.startswith(f"{name}.")}
        assert set(loaded) == set(expected), name
        for key, value in expected.items():
            # fp16 in the file, fp32 in the pipeline: exact after the up-cast
            assert torch.equal(loaded[key], value.float()), f"{name}: {key}"
    assert pipe.scheduler.config.timestep_spacing == "leading"
    assert pipe.tokenizer.model_max_length == 77 and pipe.safety_checker is None
    images = _images(pipe)
    assert images.shape == (1, 128, 128, 3) and np.isfinite(images).all()
    np.testing.assert_array_equal(images, _images(load_base_pipeline(CHECKPOINT)))


def test_a_configs_folder_beside_the_file_is_used_by_every_loader(tmp_path):
    """``<stem>.config/`` next to the checkpoint: no config_dir argument needed (train, render,
    register all call load_base_pipeline(path))."""
    local = tmp_path / "heritage-base.safetensors"
    shutil.copyfile(CHECKPOINT, local)
    shutil.copytree(CONFIG, tmp_path / "heritage-base.config")
    info = validate_base_model(local)
    assert info.kind == "single_file" and info.resolution == 128
    assert info.parameters["text_encoder"] > 0


def test_without_configs_the_file_is_read_as_sd15_and_a_size_mismatch_is_explained(tmp_path):
    # No config folder: SD 1.5's configs (offline). The tiny weights do not fit them, and the
    # error says the file could not be loaded instead of reaching for the hub.
    alone = tmp_path / "tiny-original.safetensors"
    shutil.copyfile(CHECKPOINT, alone)
    with pytest.raises(BaseModelError, match=r"could not be loaded as SD 1\.x") as refused:
        load_base_pipeline(alone)
    assert "tensor sizes differ from the configs used (SD 1.5)" in str(refused.value)
    assert "tiny-original.config/ beside the file" in str(refused.value)


@pytest.mark.parametrize("suffix", [".ckpt", ".bin", ".pt"])
def test_pickled_single_files_are_refused_unread(tmp_path, suffix):
    pickled = tmp_path / f"model{suffix}"
    shutil.copyfile(CHECKPOINT, pickled)  # even real weights under a pickle suffix
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        base_model_kind(pickled)
    with pytest.raises(BaseModelError, match="unpickling runs arbitrary code"):
        load_base_pipeline(pickled, config_dir=CONFIG)


def test_a_truncated_or_foreign_safetensors_is_refused_clearly(tmp_path):
    import torch
    from safetensors.torch import save_file

    data = CHECKPOINT.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    # Named from the header alone (no torch): the web process checks this before loading.
    with pytest.raises(BaseModelError, match=r"truncated\.safetensors: the file is truncated"):
        base_model_kind(truncated)
    with pytest.raises(BaseModelError, match=r"truncated\.safetensors: the file is truncated"):
        load_base_pipeline(truncated, config_dir=CONFIG)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    with pytest.raises(BaseModelError, match=r"garbage\.safetensors: not a safetensors file"):
        base_model_kind(garbage)
    foreign = tmp_path / "foreign.safetensors"  # valid safetensors, not a Stable Diffusion model
    save_file({"encoder.weight": torch.zeros(4, 4)}, str(foreign))
    with pytest.raises(BaseModelError, match=r"foreign\.safetensors: could not be loaded"):
        validate_base_model(foreign, config_dir=CONFIG)
