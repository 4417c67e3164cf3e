"""Loading a Stable Diffusion 1.x base model from a local path, offline, safetensors only.

Two kinds of base model:

* ``"diffusers"``: a folder as ``save_pretrained`` writes it (``model_index.json``, ``unet/``,
  ``vae/``, ``text_encoder/``, ``tokenizer/``, ``scheduler/``) with ``*.safetensors`` weights.
* ``"single_file"``: one SD 1.x checkpoint ``.safetensors`` (A1111 / CompVis layout).
  ``from_single_file`` needs the diffusers configs of the components. Given a local folder as
  ``config=`` it never touches the hub, so we write SD 1.5's configs (below, inline) to a
  folder and pass that, plus the committed CLIP tokenizer. Without ``config=`` diffusers
  would try to download ``stable-diffusion-v1-5`` configs at load time. A checkpoint whose
  components are not SD 1.5's sizes can carry its own configs in a folder beside it,
  ``<stem>.config/`` (a diffusers folder without weights); every loader then uses that.

Pickled formats (``.ckpt``, ``.pt``, ``.pth``, ``.bin``, ``.pkl``) are refused: unpickling
runs arbitrary code from the file.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle")
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
WEIGHTED_COMPONENTS = ("unet", "vae", "text_encoder")
# The offline CLIP tokenizer (ARCHITECTURE.md, "Facts"): SD 1.x's, built from open_clip's BPE file.
TOKENIZER_DIR = Path(__file__).resolve().parent / "clip_tokenizer"

# --- Stable Diffusion 1.5's component configurations (as its diffusers repo holds them) ---
SD15_UNET_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": [320, 640, 1280, 1280],
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": [
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "CrossAttnDownBlock2D",
        "DownBlock2D",
    ],
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": [
        "UpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
        "CrossAttnUpBlock2D",
    ],
}
SD15_VAE_CONFIG: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "in_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 3,
    "sample_size": 512,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "scaling_factor": 0.18215,
}
SD15_TEXT_ENCODER_CONFIG: dict[str, Any] = {  # CLIP ViT-L/14 text tower
    "architectures": ["CLIPTextModel"],
    "model_type": "clip_text_model",
    "vocab_size": 49408,
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "layer_norm_eps": 1e-05,
    "projection_dim": 768,
    "bos_token_id": 49406,
    "eos_token_id": 49407,
    "pad_token_id": 49407,
    "torch_dtype": "float32",
}
SD15_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "DDIMScheduler",
    "num_train_timesteps": 1000,
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "clip_sample": False,
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "prediction_type": "epsilon",
    "timestep_spacing": "leading",
}
SD15_MODEL_INDEX: dict[str, Any] = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": [None, None],
    "requires_safety_checker": False,
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "DDIMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}


class BaseModelError(ValueError):
    """A base model path that cannot be used; the message says why."""


@dataclass(frozen=True)
class BaseModelInfo:
    path: str
    kind: str  # "diffusers" | "single_file"
    sha256: str
    resolution: int  # the VAE's native image size (512 for SD 1.5)
    parameters: dict[str, int]  # per weighted component


def refuse_pickle(path: str | Path, error: type[ValueError] = BaseModelError) -> None:
    """Raise ``error`` for pickled weight files (their loading executes code): base models and
    LoRA files (``lora_files`` passes LoraFileError) alike."""
    suffix = Path(path).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise error(
            f"{Path(path).name}: '{suffix}' files are Python pickles, and unpickling runs "
            "arbitrary code from the file. Convert the weights to .safetensors and use that."
        )


def check_safetensors_file(path: str | Path) -> None:
    """Raise BaseModelError if the file is not a whole safetensors file (header + every tensor).

    Reads only the header: a truncated download or a foreign file is named before any loading.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        length = int.from_bytes(prefix, "little") if len(prefix) == 8 else -1
        if length <= 0 or 8 + length > size:
            raise BaseModelError(f"{path.name}: not a safetensors file (no readable header).")
        try:
            header = json.loads(handle.read(length))
            ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
        except (ValueError, TypeError, KeyError, AttributeError):
            raise BaseModelError(f"{path.name}: not a safetensors file (corrupt header).") from None
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        raise BaseModelError(
            f"{path.name}: the file is truncated ({size} bytes, its header describes "
            f"{expected}); copy it again."
        )


def base_model_kind(path: str | Path) -> str:
    """Check a base model path without loading weights: "diffusers" or "single_file".

    Raises BaseModelError naming what is missing or refused.
    """
    path = Path(path)
    refuse_pickle(path)
    if not path.exists():
        raise BaseModelError(f"{path}: no such file or folder on this machine.")
    if path.is_file():
        if path.suffix.lower() != ".safetensors":
            raise BaseModelError(
                f"{path.name}: a single-file base model must be a .safetensors checkpoint."
            )
        check_safetensors_file(path)
        return "single_file"
    if not (path / "model_index.json").is_file():
        raise BaseModelError(f"{path}: not a diffusers model folder (model_index.json is missing).")
    missing = [name for name in COMPONENTS if not (path / name).is_dir()]
    if missing:
        raise BaseModelError(f"{path}: missing component folders: {', '.join(missing)}.")
    for name in WEIGHTED_COMPONENTS:
        folder = path / name
        if not any(folder.glob("*.safetensors")):
            pickles = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
            why = (
                f" (only pickled weights: {', '.join(pickles)}; unpickling runs code)"
                if pickles
                else ""
            )
            raise BaseModelError(f"{path}: {name}/ has no .safetensors weights{why}.")
    return "diffusers"


def single_file_config_dir(path: str | Path) -> Path | None:
    """The configs folder beside a single-file checkpoint (``<stem>.config/``), if there is one."""
    path = Path(path)
    folder = path.with_name(path.stem + ".config")
    return folder if (folder / "model_index.json").is_file() else None


def write_sd15_config_dir(out_dir: str | Path) -> Path:
    """SD 1.5's diffusers configs (no weights) for an offline ``from_single_file``."""
    out = Path(out_dir)
    files = {
        "model_index.json": SD15_MODEL_INDEX,
        "unet/config.json": {"_class_name": "UNet2DConditionModel", **SD15_UNET_CONFIG},
        "vae/config.json": {"_class_name": "AutoencoderKL", **SD15_VAE_CONFIG},
        "text_encoder/config.json": SD15_TEXT_ENCODER_CONFIG,
        "scheduler/scheduler_config.json": SD15_SCHEDULER_CONFIG,
    }
    for name, content in files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(content, indent=2), encoding="utf-8")
    tokenizer_out = out / "tokenizer"
    tokenizer_out.mkdir(exist_ok=True)
    for item in TOKENIZER_DIR.iterdir():
        (tokenizer_out / item.name).write_bytes(item.read_bytes())
    return out


def load_base_pipeline(
    path: str | Path,
    *,
    dtype: Any = None,
    config_dir: str | Path | None = None,
):
    """A StableDiffusionPipeline from a local base model, never from a hub.

    ``config_dir``: for a single file, a folder of diffusers configs that describes it
    (default: the ``<stem>.config/`` folder beside it, else SD 1.5's, written to a temporary
    folder).
    """
    import torch
    from diffusers import StableDiffusionPipeline

    from generation.diffusion.tokenizer import load_tokenizer

    kind = base_model_kind(path)
    if kind == "single_file" and config_dir is None:
        config_dir = single_file_config_dir(path)
    dtype = dtype or torch.float32
    common = {
        "dtype": dtype,
        "local_files_only": True,
        "safety_checker": None,
        "feature_extractor": None,
        "requires_safety_checker": False,
    }
    try:
        if kind == "diffusers":
            pipe = StableDiffusionPipeline.from_pretrained(
                str(path), use_safetensors=True, **common
            )
        elif config_dir is not None:
            pipe = StableDiffusionPipeline.from_single_file(
                str(path), config=str(config_dir), **common
            )
        else:
            with tempfile.TemporaryDirectory(prefix="sd15-config-") as tmp:
                write_sd15_config_dir(tmp)
                pipe = StableDiffusionPipeline.from_single_file(
                    str(path),
                    config=tmp,
                    tokenizer=load_tokenizer(TOKENIZER_DIR),
                    **common,
                )
    except BaseModelError:
        raise
    except Exception as exc:  # a corrupt or foreign file: say so instead of a traceback
        hint = ""
        if kind == "single_file" and "expected shape" in str(exc):
            hint = (
                " Its tensor sizes differ from the configs used"
                f" ({config_dir or 'SD 1.5'}); put the diffusers configs that describe it in"
                f" {Path(path).stem}.config/ beside the file."
            )
        raise BaseModelError(
            f"{Path(path).name}: could not be loaded as SD 1.x ({exc}).{hint}"
        ) from exc
    # The committed tokenizer's length limit, whatever the folder says (1e30 overflows).
    pipe.tokenizer.model_max_length = 77
    pipe.set_progress_bar_config(disable=True)
    return pipe


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_model_sha256(path: str | Path) -> str:
    """sha256 of a single file, or of a folder's manifest ("relpath sha256" lines, sorted)."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    lines = [
        f"{p.relative_to(path).as_posix()} {file_sha256(p)}"
        for p in sorted(path.rglob("*"))
        if p.is_file()
    ]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def validate_base_model(path: str | Path, *, config_dir: str | Path | None = None) -> BaseModelInfo:
    """Register-time check: right kind, every component present and loadable."""
    kind = base_model_kind(path)
    pipe = load_base_pipeline(path, config_dir=config_dir)
    for name in COMPONENTS:
        if getattr(pipe, name, None) is None:
            raise BaseModelError(f"{path}: component '{name}' did not load.")
    if pipe.unet.config.in_channels != 4 or pipe.vae.config.latent_channels != 4:
        raise BaseModelError(f"{path}: not an SD 1.x text-to-image model (4 latent channels).")
    if pipe.unet.config.cross_attention_dim != pipe.text_encoder.config.hidden_size:
        raise BaseModelError(f"{path}: the U-Net and text encoder do not fit together.")
    parameters = {
        name: sum(p.numel() for p in getattr(pipe, name).parameters())
        for name in WEIGHTED_COMPONENTS
    }
    scale = 2 ** (len(pipe.vae.config.block_out_channels) - 1)
    return BaseModelInfo(
        path=str(path),
        kind=kind,
        sha256=base_model_sha256(path),
        resolution=int(pipe.unet.config.sample_size * scale),
        parameters=parameters,
    )
