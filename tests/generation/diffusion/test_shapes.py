"""Generation at the shapes people need (hanging scroll, handscroll) and the memory estimate
at the largest bucket."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation.diffusion import inference
from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.memory import estimate_gpu_memory, largest_bucket
from generation.diffusion.pipeline import load_base_pipeline

DEMO_MODEL = Path(__file__).resolve().parents[3] / "demo" / "model"


def test_shape_presets_follow_the_model_size():
    assert inference.shape_size("hanging_scroll", 512) == (512, 1024)
    assert inference.shape_size("handscroll", 512) == (1024, 256)
    assert inference.shape_size("square", 512) == (512, 512)
    assert inference.shape_size("hanging_scroll", 64) == (64, 128)


def test_sizes_are_checked():
    def errors(width, height):
        settings = inference.RenderSettings(prompt="a scroll", width=width, height=height)
        return inference.check_render_settings(
            settings, images=1, tokenizer_dir=None, sample_size=512
        )

    assert errors(512, 1024) == [] and errors(1024, 256) == []
    assert any("width must be a multiple of 8" in e for e in errors(500, 1024))
    assert any("between 64 and 2048" in e for e in errors(512, 4096))


@pytest.mark.parametrize("shape", ["hanging_scroll", "handscroll"])
def test_the_demo_model_draws_at_scroll_shapes(shape):
    """512x1024-shaped sizes at the demo model's 64 px: a real picture, not a stretched one."""
    import torch

    torch.set_num_threads(1)
    pipe = load_base_pipeline(DEMO_MODEL)
    width, height = inference.shape_size(shape, 64)
    settings = inference.RenderSettings(
        prompt="[U], landscape painting, mountains and river", steps=8, width=width, height=height
    )
    image = inference.render(pipe, settings, seed=1)
    assert image.size == (width, height)
    array = np.asarray(image, dtype=np.float32)
    assert array.std() > 5  # not blank
    # the two halves along the long side differ: content fills the whole length
    axis = 0 if height > width else 1
    first, second = np.array_split(array, 2, axis=axis)
    assert np.abs(first.mean(axis=(0, 1)) - second.mean(axis=(0, 1))).max() > 0.5 or (
        np.abs(first - np.flip(second, axis=axis)).mean() > 5
    )


def test_memory_estimate_uses_the_largest_bucket():
    config = LoraTrainingConfig(resolution=512)
    assert largest_bucket(config) == (512, 512)  # kohya's buckets stay within 512**2 pixels
    square = estimate_gpu_memory(config)
    tall = estimate_gpu_memory(config, bucket=(256, 1024))  # same pixels: same activations
    thin = estimate_gpu_memory(config, bucket=(1280, 128))
    assert tall.activations == square.activations
    assert thin.activations < square.activations
    assert "512 px" in square.assumptions
    assert "1280x128 px (largest bucket)" in thin.assumptions
