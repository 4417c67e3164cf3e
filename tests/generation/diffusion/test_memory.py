"""Pre-flight GPU memory estimate and the peak-memory meter."""

from __future__ import annotations

import pytest
import torch

from generation.diffusion.config import LoraTrainingConfig, preset_config
from generation.diffusion.memory import (
    GIB,
    SD15_TEXT_ENCODER_PARAMS,
    SD15_UNET_PARAMS,
    PeakMemory,
    check_fits,
    estimate_gpu_memory,
    lora_parameters,
    model_sizes,
    sd15_lora_parameters,
)


@pytest.mark.parametrize(
    "target", ["unet_attention", "unet_cross_attention", "unet_and_text_encoder", "unet_all"]
)
def test_lora_parameter_count_matches_sd15_built_from_its_config(target):
    """Built on the meta device: the real architecture, no memory, no download."""
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.diffusion.config import TEXT_ENCODER_MODULES
    from generation.diffusion.pipeline import SD15_TEXT_ENCODER_CONFIG, SD15_UNET_CONFIG

    config = LoraTrainingConfig(target=target, rank=8, cache_text_embeddings=False)
    with torch.device("meta"):
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_ENCODER_CONFIG))
    assert sum(p.numel() for p in unet.parameters()) == SD15_UNET_PARAMS
    assert sum(p.numel() for p in text_encoder.parameters()) == SD15_TEXT_ENCODER_PARAMS
    unet.add_adapter(LoraConfig(r=8, target_modules=config.unet_target_modules))
    count = sum(p.numel() for n, p in unet.named_parameters() if "lora_" in n)
    if config.trains_text_encoder:
        text_encoder.add_adapter(LoraConfig(r=8, target_modules=list(TEXT_ENCODER_MODULES)))
        count += sum(p.numel() for n, p in text_encoder.named_parameters() if "lora_" in n)
    assert count == sd15_lora_parameters(config)


def test_the_papers_low_memory_settings_fit_a_6_gib_card():
    lean = preset_config(
        "gazetteer-001", mixed_precision="fp16", gradient_checkpointing=True, cache_latents=True
    )
    ok, estimate, message = check_fits(lean, 6)
    assert ok and estimate < 6 * GIB and "fits in 6 GiB" in message


def test_a_run_that_cannot_fit_is_refused_with_the_estimate_and_advice():
    heavy = LoraTrainingConfig(resolution=768, train_batch_size=8, cache_latents=False)
    ok, estimate, message = check_fits(heavy, 6)
    assert not ok and estimate > 6 * GIB
    assert f"about {estimate / GIB:.2f} GiB" in message
    assert "more than 1.5x the worker GPU's 6 GiB" in message
    assert "mixed precision fp16" in message and "gradient checkpointing" in message


def test_settings_that_save_memory_lower_the_estimate():
    plain = LoraTrainingConfig(cache_latents=False)
    total = estimate_gpu_memory(plain).total
    for change in (
        {"mixed_precision": "fp16"},
        {"gradient_checkpointing": True},
        {"cache_latents": True},
        {"optimizer": "adamw8bit"},
    ):
        assert estimate_gpu_memory(plain.replace(**change)).total < total, change
    assert estimate_gpu_memory(plain.replace(train_batch_size=2)).total > total


def test_peak_memory_sees_a_large_allocation():
    with PeakMemory("cpu") as peak:
        block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB
        peak.sample()
        del block
    assert peak.kind == "cpu_rss_peak"
    assert peak.peak_increase_bytes >= 60 * 1024 * 1024


@pytest.mark.parametrize("target", ["unet_cross_attention", "unet_and_text_encoder", "unet_all"])
def test_the_estimate_is_for_the_registered_model_read_from_its_headers(tmp_path, target):
    """The tiny model's sizes come from its safetensors headers and equal what peft adds to the
    loaded model; its estimate is far from SD 1.5's."""
    from peft import LoraConfig

    from demo.tiny import build_tiny_pipeline
    from generation.diffusion.config import TEXT_ENCODER_MODULES

    pipe = build_tiny_pipeline(tmp_path / "tiny", sample_size=32)
    sizes = model_sizes(tmp_path / "tiny")
    assert sizes.unet == sum(p.numel() for p in pipe.unet.parameters())
    assert sizes.text_encoder == sum(p.numel() for p in pipe.text_encoder.parameters())
    assert sizes.latent_scale == 2
    config = LoraTrainingConfig(target=target, rank=4, resolution=32, cache_text_embeddings=False)
    pipe.unet.add_adapter(LoraConfig(r=4, target_modules=config.unet_target_modules))
    count = sum(p.numel() for n, p in pipe.unet.named_parameters() if "lora_" in n)
    if config.trains_text_encoder:
        pipe.text_encoder.add_adapter(LoraConfig(r=4, target_modules=list(TEXT_ENCODER_MODULES)))
        count += sum(p.numel() for n, p in pipe.text_encoder.named_parameters() if "lora_" in n)
    assert lora_parameters(config, sizes) == count

    tiny = estimate_gpu_memory(config, sizes)
    sd15 = estimate_gpu_memory(config)
    assert tiny.weights < sd15.weights / 100 and tiny.lora_parameters < sd15.lora_parameters
    assert tiny.total < sd15.total / 5  # what is left is the fixed CUDA workspace
    assert "tiny, fp32 weights, batch 1 at 32 px" in tiny.describe()
    assert "SD 1.5, fp32 weights" in sd15.describe()


def test_the_single_file_fixture_is_sized_from_its_header():
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[2] / "fixtures" / "tiny-sd1.safetensors"
    sizes = model_sizes(fixture)
    assert 0 < sizes.unet < SD15_UNET_PARAMS / 100 and sizes.latent_scale == 8
    assert estimate_gpu_memory(LoraTrainingConfig(), sizes).total < 2 * GIB


def test_near_the_limit_the_estimate_warns_and_only_far_above_it_refuses():
    config = LoraTrainingConfig(mixed_precision="fp16", cache_latents=True)
    total = estimate_gpu_memory(config).total
    ok, _, message = check_fits(config, total / GIB / 1.2)  # 20 % over the card
    assert ok and message.startswith("Warning: this run may not fit")
    assert "SD 1.5, fp16 weights, batch 1 at 512 px, gradient checkpointing off" in message
    ok, _, message = check_fits(config, total / GIB / 2)  # twice the card
    assert not ok and message.startswith("This run needs")
