"""Write a diffusers SD 1.x pipeline as one checkpoint in the original (CompVis / A1111) layout.

A test helper, so single-file loading can be proven without downloading a real checkpoint.
It follows the key correspondence of diffusers' ``convert_diffusers_to_original_stable_diffusion``
script, generalised from SD 1.5's fixed counts (4 blocks, 2 layers) to any SD-shaped config:
the original U-Net numbers its blocks flat (``input_blocks.N`` / ``output_blocks.N``, one per
resnet or sampler, with the block's attention as sub-module ``.1``), the original VAE numbers
decoder levels in reverse and keeps its mid attention as 1x1 convolutions, and the SD 1.x text
encoder is the transformers CLIP model under ``cond_stage_model.transformer.``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_ENCODER_PREFIX = "cond_stage_model.transformer."

# Names inside a resnet: (diffusers, original).
_UNET_RESNET_PARTS = (
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
)
_UNET_TOP_LEVEL = {
    "time_embedding.linear_1.": "time_embed.0.",
    "time_embedding.linear_2.": "time_embed.2.",
    "conv_in.": "input_blocks.0.0.",
    "conv_norm_out.": "out.0.",
    "conv_out.": "out.2.",
}


def _unet_prefixes(config: Any) -> dict[str, str]:
    """diffusers module prefix -> original prefix, for one U-Net config."""
    blocks = len(config.block_out_channels)
    layers = config.layers_per_block
    stride = layers + 1  # each level: its resnets, then the sampler
    prefixes = dict(_UNET_TOP_LEVEL)
    for i in range(blocks):
        for j in range(layers):
            index = stride * i + j + 1
            prefixes[f"down_blocks.{i}.resnets.{j}."] = f"input_blocks.{index}.0."
            prefixes[f"down_blocks.{i}.attentions.{j}."] = f"input_blocks.{index}.1."
        if i < blocks - 1:
            prefixes[f"down_blocks.{i}.downsamplers.0.conv."] = (
                f"input_blocks.{stride * (i + 1)}.0.op."
            )
        up_has_attention = "CrossAttn" in config.up_block_types[i]
        for j in range(layers + 1):
            index = stride * i + j
            prefixes[f"up_blocks.{i}.resnets.{j}."] = f"output_blocks.{index}.0."
            prefixes[f"up_blocks.{i}.attentions.{j}."] = f"output_blocks.{index}.1."
        if i < blocks - 1:
            slot = 2 if up_has_attention else 1
            prefixes[f"up_blocks.{i}.upsamplers.0."] = (
                f"output_blocks.{stride * i + layers}.{slot}."
            )
    prefixes["mid_block.attentions.0."] = "middle_block.1."
    prefixes["mid_block.resnets.0."] = "middle_block.0."
    prefixes["mid_block.resnets.1."] = "middle_block.2."
    return prefixes


def _split(key: str, prefixes: dict[str, str]) -> tuple[str, str]:
    """(original prefix, the rest of the key) for the longest matching diffusers prefix."""
    for old in sorted(prefixes, key=len, reverse=True):
        if key.startswith(old):
            return prefixes[old], key[len(old) :]
    raise KeyError(f"no original-layout name for {key}")


def unet_to_original(state_dict: dict[str, Any], config: Any) -> dict[str, Any]:
    prefixes = _unet_prefixes(config)
    out = {}
    for key, value in state_dict.items():
        head, tail = _split(key, prefixes)
        if ".resnets." in key:  # the resnet's own layers have other names too
            for new, old in _UNET_RESNET_PARTS:
                if tail.startswith(new + "."):
                    tail = old + tail[len(new) :]
                    break
        out[UNET_PREFIX + head + tail] = value
    return out


_VAE_ATTENTION_PARTS = (
    ("group_norm.", "norm."),
    ("to_q.", "q."),
    ("to_k.", "k."),
    ("to_v.", "v."),
    ("to_out.0.", "proj_out."),
)


def _vae_prefixes(config: Any) -> dict[str, str]:
    blocks = len(config.block_out_channels)
    layers = config.layers_per_block
    prefixes = {}
    for i in range(blocks):
        for j in range(layers):
            prefixes[f"encoder.down_blocks.{i}.resnets.{j}."] = f"encoder.down.{i}.block.{j}."
        for j in range(layers + 1):  # decoder levels run in reverse in the original
            prefixes[f"decoder.up_blocks.{i}.resnets.{j}."] = (
                f"decoder.up.{blocks - 1 - i}.block.{j}."
            )
        if i < blocks - 1:
            prefixes[f"encoder.down_blocks.{i}.downsamplers.0."] = f"encoder.down.{i}.downsample."
            prefixes[f"decoder.up_blocks.{i}.upsamplers.0."] = (
                f"decoder.up.{blocks - 1 - i}.upsample."
            )
    for part in ("encoder", "decoder"):
        prefixes[f"{part}.mid_block.attentions.0."] = f"{part}.mid.attn_1."
        prefixes[f"{part}.mid_block.resnets.0."] = f"{part}.mid.block_1."
        prefixes[f"{part}.mid_block.resnets.1."] = f"{part}.mid.block_2."
        prefixes[f"{part}.conv_norm_out."] = f"{part}.norm_out."
    return prefixes


def vae_to_original(state_dict: dict[str, Any], config: Any) -> dict[str, Any]:
    prefixes = _vae_prefixes(config)
    out = {}
    for key, value in state_dict.items():
        try:
            head, tail = _split(key, prefixes)
        except KeyError:  # conv_in, conv_out, quant_conv, post_quant_conv: same names
            head, tail = "", key
        if tail.startswith("conv_shortcut."):
            tail = "nin_shortcut." + tail[len("conv_shortcut.") :]
        if head.endswith(".mid.attn_1."):
            for new, old in _VAE_ATTENTION_PARTS:
                if tail.startswith(new):
                    tail = old + tail[len(new) :]
                    break
            if tail.endswith("weight") and value.ndim == 2:  # linear -> 1x1 convolution
                value = value.reshape(*value.shape, 1, 1)
        out[VAE_PREFIX + head + tail] = value
    return out


def text_encoder_to_original(state_dict: dict[str, Any]) -> dict[str, Any]:
    """SD 1.x keeps the CLIPTextModel names of its day under ``cond_stage_model.transformer.``.

    Those names start with ``text_model.``, which transformers >= 5.6 no longer has (its
    CLIPTextModel was flattened). Real SD 1.x files also carry the ``position_ids`` buffer.
    """
    import torch

    out = {}
    for key, value in state_dict.items():
        name = key if key.startswith("text_model.") else "text_model." + key
        out[TEXT_ENCODER_PREFIX + name] = value
    positions = out[TEXT_ENCODER_PREFIX + "text_model.embeddings.position_embedding.weight"]
    out[TEXT_ENCODER_PREFIX + "text_model.embeddings.position_ids"] = torch.arange(
        positions.shape[0]
    ).unsqueeze(0)
    return out


def pipeline_to_original(pipe) -> dict[str, Any]:
    """One state dict in the original single-file layout (contiguous copies, safetensors-ready)."""
    state = {
        **unet_to_original(pipe.unet.state_dict(), pipe.unet.config),
        **vae_to_original(pipe.vae.state_dict(), pipe.vae.config),
        **text_encoder_to_original(pipe.text_encoder.state_dict()),
    }
    return {key: value.detach().clone().contiguous() for key, value in state.items()}


def save_original_checkpoint(pipe, path: str | Path) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    save_file(pipeline_to_original(pipe), str(path))
    return path
