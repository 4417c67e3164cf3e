"""Small Stable-Diffusion-format pipelines built from configs (no downloads).

``build_tiny_pipeline`` is for tests: random weights, real diffusers/transformers classes, the
real CLIP tokenizer, an SD 1.5 DDIM scheduler. It saves and reloads like any SD 1.x folder.
The config builders are shared with the demo model recipe (``demo/model_recipe.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generation.diffusion.pipeline import SD15_SCHEDULER_CONFIG, TOKENIZER_DIR

# Stable Diffusion 1.5's scheduler settings (the ones its scheduler_config.json holds).
SD15_SCHEDULER: dict[str, Any] = {
    k: v for k, v in SD15_SCHEDULER_CONFIG.items() if k != "_class_name"
}


def text_encoder_config(*, hidden_size: int = 32, layers: int = 2, heads: int = 4):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=49408,  # the real CLIP vocabulary, so the real tokenizer fits
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=49407,
        hidden_act="quick_gelu",
    )


def build_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(**SD15_SCHEDULER)


def assemble_pipeline(*, unet, vae, text_encoder, tokenizer=None, scheduler=None):
    """A StableDiffusionPipeline with no safety checker (as a local SD 1.5 folder is loaded)."""
    from diffusers import StableDiffusionPipeline

    from generation.diffusion.tokenizer import load_tokenizer

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer if tokenizer is not None else load_tokenizer(TOKENIZER_DIR),
        unet=unet,
        scheduler=scheduler if scheduler is not None else build_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_tiny_pipeline(out_dir: Path | None = None, *, seed: int = 0, sample_size: int = 32):
    """A random-weight SD-format pipeline making ``sample_size`` px images in well under 1 s.

    The VAE downsamples by 2 (latents of ``sample_size // 2``); the UNet has cross-attention
    (to_q/to_k/to_v/to_out.0, the LoRA targets) on the text encoder's hidden size. With
    ``out_dir`` the pipeline is also saved there as safetensors (reload with from_pretrained).
    """
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    hidden = 32
    unet = UNet2DConditionModel(
        sample_size=sample_size // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=hidden,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=32,
        sample_size=sample_size,
    )
    text_encoder = CLIPTextModel(text_encoder_config(hidden_size=hidden))
    pipe = assemble_pipeline(unet=unet, vae=vae, text_encoder=text_encoder)
    pipe.set_progress_bar_config(disable=True)
    if out_dir is not None:
        pipe.save_pretrained(str(out_dir), safe_serialization=True)
    return pipe
