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
    assert "more than the worker GPU's 6 GiB" in message
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
