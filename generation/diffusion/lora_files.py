"""LoRA files: diffusers/PEFT format and kohya format, safetensors with provenance metadata.

* diffusers/PEFT (``pytorch_lora_weights.safetensors``): ``save_lora_weights``' layout with the
  text encoder under ``text_encoder.text_model.`` (SD 1.5 files in the wild, and what diffusers
  0.32 - the release kohya-ss/sd-scripts pins - needs; transformers 5 dropped that module level).
  alpha / rank is multiplied into every ``lora_B`` and the adapter metadata says alpha = rank, so
  the file draws at the trained scale in diffusers releases that ignore that header too (they
  assume alpha = rank). U-Net keys keep their PEFT names (see ``save_lora_files``).
* kohya (A1111, ComfyUI, kohya-ss), ``<ss_output_name>.safetensors``:
  ``convert_state_dict_to_kohya(...)`` with the TRUE alpha in every ``.alpha`` (the converter
  writes alpha = rank), SD 1.x's ``lora_te_`` prefix, and the hashes A1111 looks it up by
  (``sshs_model_hash``, ``sshs_legacy_hash``, computed as kohya's ``train_util.
  precalculate_safetensors_hashes`` does). Layers kohya's SD 1.x LoRA cannot hold (the time
  embedding, a text-to-time ``add_embedding``) would be dropped silently by sd-scripts and A1111,
  so a LoRA with such layers gets no kohya file, and ``LoraFiles.kohya_note`` says why.

Both files carry a str -> str header: ``modelspec.*`` (Stability's model spec), kohya's ``ss_*``
training keys and ``heritage.*`` provenance. Loading (``load_lora_into``) refuses pickles, and
refuses a file whose layers do not all attach to the base model.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.pipeline import file_sha256, refuse_pickle

DIFFUSERS_WEIGHT_NAME = "pytorch_lora_weights.safetensors"
MODELSPEC_ARCHITECTURE = "stable-diffusion-v1/lora"


class LoraFileError(ValueError):
    """A LoRA file that is refused; the message says why."""


@dataclass(frozen=True)
class LoraFiles:
    diffusers_path: str
    diffusers_sha256: str
    kohya_path: str  # "" when the LoRA has layers kohya cannot hold (see kohya_note)
    kohya_sha256: str
    kohya_note: str = ""


def kohya_file_stem(title: str) -> str:
    """The kohya file's name without ``.safetensors``: its ``ss_output_name`` and the NAME of
    ``<lora:NAME:1>`` (A1111 finds a LoRA by file name or ``ss_output_name``). ASCII only, as
    file names travel through zip files and shells."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_]+", "-", ascii_title).strip("-_").lower()[:60] or "atelier-lora"


# --- A1111 / kohya hashes (kohya-ss sd-scripts library/train_util.py) ---


def addnet_hash(data: bytes) -> str:
    """sha256 of a safetensors file's bytes after its header: kohya's ``sshs_model_hash``, and
    the hash A1111 computes for a LoRA without one (infotext shows the first 12 hex digits).
    The header is left out so that editing metadata does not change it."""
    length = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + length :]).hexdigest()


def addnet_legacy_hash(data: bytes) -> str:
    """sd-webui-additional-networks' old hash: 0x10000 bytes at 0x100000, 8 hex digits."""
    return hashlib.sha256(data[0x100000 : 0x100000 + 0x10000]).hexdigest()[:8]


def kohya_hashes(tensors: Mapping, metadata: Mapping[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) as kohya computes them before writing: the file
    serialised with only its ``ss_*`` metadata (the legacy hash depends on the header size)."""
    from safetensors.torch import save

    data = save(dict(tensors), {k: v for k, v in metadata.items() if k.startswith("ss_")})
    return addnet_hash(data), addnet_legacy_hash(data)


# Layers kohya's SD 1.x LoRA (sd-scripts networks/lora.py) has names for: inside
# Transformer2DModel blocks and ResnetBlock2D / Downsample2D / Upsample2D (convs with conv_dim),
# and in the text encoder's CLIPAttention / CLIPMLP. Anything else (time_embedding, add_embedding,
# conv_in) is skipped by sd-scripts' and A1111's loaders without an error.
_KOHYA_UNET_SCOPE = re.compile(
    r"((down|up)_blocks\.\d+|mid_block)\.(attentions|resnets)\.\d+\."
    r"|(down|up)_blocks\.\d+\.(downsamplers|upsamplers)\.0\.conv\."
)
_KOHYA_TE_SCOPE = re.compile(r"(text_model\.)?encoder\.layers\.\d+\.(self_attn|mlp)\.")


def _layer(key: str) -> str:
    return key.split(".lora", 1)[0]


def kohya_unrepresentable(unet_peft: Mapping, text_encoder_peft: Mapping | None) -> list[str]:
    """The LoRA's layers that a kohya SD 1.x file cannot carry, as ``unet.<module>`` names."""
    layers = {f"unet.{_layer(k)}" for k in unet_peft if not _KOHYA_UNET_SCOPE.match(k)}
    layers |= {
        f"text_encoder.{_layer(k)}" for k in text_encoder_peft or {} if not _KOHYA_TE_SCOPE.match(k)
    }
    return sorted(layers)


def bake_scale(peft_sd: Mapping, scale: float) -> dict:
    """``lora_B`` times ``scale`` (alpha / rank): the same update at alpha = rank."""
    return {
        k: (v * scale if ".lora_B." in k and scale != 1 else v).contiguous()
        for k, v in peft_sd.items()
    }


def lora_state_dicts(unet, text_encoder=None) -> tuple[dict, dict | None]:
    """The trained LoRA layers in peft naming (``...to_k.lora_A.weight``)."""
    from peft.utils import get_peft_model_state_dict

    unet_sd = get_peft_model_state_dict(unet)
    te_sd = None
    if text_encoder is not None and getattr(text_encoder, "peft_config", None):
        te_sd = get_peft_model_state_dict(text_encoder)
    return unet_sd, te_sd


def to_kohya(unet_peft: Mapping, text_encoder_peft: Mapping | None, *, alpha: float) -> dict:
    """kohya-format tensors from peft-format state dicts (``get_peft_model_state_dict``), with
    the TRUE alpha (the diffusers converter writes alpha = rank) and SD 1.x's text-encoder
    names ``lora_te_text_model_encoder_...`` (transformers 5 dropped the ``text_model``
    module level; A1111/ComfyUI/kohya still expect it)."""
    import torch
    from diffusers.utils import convert_state_dict_to_kohya

    peft_sd = {f"unet.{k}": v for k, v in unet_peft.items()}
    for key, value in (text_encoder_peft or {}).items():
        name = key if key.startswith("text_model.") else f"text_model.{key}"
        peft_sd[f"text_encoder.{name}"] = value
    kohya = {}
    for key, value in convert_state_dict_to_kohya(peft_sd).items():
        key = key.replace("lora_te1_", "lora_te_", 1)  # SD 1.x has one text encoder: lora_te_
        if key.endswith(".alpha"):
            value = torch.tensor(float(alpha), dtype=torch.float32)
        kohya[key] = value.detach().contiguous().cpu()
    return kohya


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float) or value is None:
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def build_metadata(
    config: LoraTrainingConfig,
    *,
    title: str,
    steps: int,
    epochs: int,
    num_images: int,
    base_model_name: str = "",
    base_model_sha256: str = "",
    prediction_type: str = "epsilon",
    license: str = "",
    description: str = "",
    provenance: Mapping[str, Any] | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
) -> dict[str, str]:
    """The str -> str header of both files.

    ``provenance`` keys (dataset hash and version, accession numbers, rights...) are written
    as ``heritage.<key>``; lists and dicts become JSON text. Without ``base_model_sha256`` the
    provenance's ``base_model_sha256`` (what the training job passes) fills
    ``ss_new_sd_model_hash``. ``prediction_type``: the base model's ("epsilon" or "v").
    """
    base_model_sha256 = base_model_sha256 or str((provenance or {}).get("base_model_sha256", ""))
    finished = finished_at or datetime.now(UTC)
    optimizer_name = (
        "bitsandbytes.optim.AdamW8bit" if config.optimizer == "adamw8bit" else "torch.optim.AdamW"
    )
    size = f"{config.resolution}x{config.resolution}"
    metadata = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": MODELSPEC_ARCHITECTURE,
        "modelspec.implementation": "https://github.com/huggingface/diffusers",
        "modelspec.title": title,
        "modelspec.date": finished.date().isoformat(),
        "modelspec.resolution": size,
        "modelspec.trigger_phrase": config.trigger_token,
        "modelspec.license": license,
        "modelspec.description": description,
        "modelspec.prediction_type": "v" if prediction_type == "v_prediction" else prediction_type,
        "ss_network_module": "networks.lora",
        "ss_network_dim": config.rank,
        "ss_network_alpha": config.alpha,
        "ss_network_dropout": config.dropout,
        "ss_network_train_unet_only": not config.trains_text_encoder,
        "ss_base_model_version": "sd_v1",
        "ss_v2": False,
        "ss_sd_model_name": base_model_name,
        "ss_new_sd_model_hash": base_model_sha256,
        "ss_resolution": f"({config.resolution}, {config.resolution})",
        "ss_num_train_images": num_images,
        "ss_batch_size_per_device": config.train_batch_size,
        "ss_num_epochs": epochs,
        "ss_epoch": epochs,
        "ss_steps": steps,
        "ss_max_train_steps": steps,
        "ss_learning_rate": config.unet_lr,
        "ss_unet_lr": config.unet_lr,
        "ss_text_encoder_lr": config.text_encoder_lr if config.trains_text_encoder else 0.0,
        "ss_optimizer": optimizer_name,
        "ss_lr_scheduler": config.lr_scheduler,
        "ss_lr_warmup_steps": config.lr_warmup_steps,
        "ss_mixed_precision": config.mixed_precision,
        "ss_gradient_checkpointing": config.gradient_checkpointing,
        "ss_cache_latents": config.cache_latents,
        "ss_min_snr_gamma": config.snr_gamma if config.snr_gamma is not None else "",
        "ss_noise_offset": config.noise_offset,
        "ss_flip_aug": config.random_flip,
        "ss_caption_dropout_rate": config.caption_dropout,
        "ss_seed": config.seed,
        "ss_max_grad_norm": config.max_grad_norm,
        "ss_output_name": kohya_file_stem(title),
        "ss_training_finished_at": int(finished.timestamp()),
        "ss_training_comment": f"trigger: {config.trigger_token}" if config.trigger_token else "",
    }
    if started_at is not None:
        metadata["ss_training_started_at"] = int(started_at.timestamp())
    for key, value in (provenance or {}).items():
        name = key if key.startswith("heritage.") else f"heritage.{key}"
        metadata[name] = value
    metadata["heritage.training_config"] = config.to_dict()
    return {key: _str(value) for key, value in metadata.items()}


def _adapter_config(model, *, rank: int) -> dict | None:
    """The peft LoraConfig of ``model`` as diffusers' header holds it, at alpha = rank (the
    scale is in the weights; see ``bake_scale``)."""
    config = getattr(model, "peft_config", {}).get("default") if model is not None else None
    if config is None:
        return None
    data = config.to_dict()
    for key, value in data.items():  # sets are not JSON
        if isinstance(value, set):
            data[key] = sorted(value)
    data["lora_alpha"] = rank
    data["alpha_pattern"] = {}
    return data


def _kohya_network_args(kohya: Mapping, *, rank: int, alpha: float) -> dict[str, str]:
    """kohya's ``network_args``: LoRAs on 3x3 convs (resnets) exist only with ``conv_dim``."""
    convs = any(
        k.endswith(".lora_down.weight") and v.ndim == 4 and tuple(v.shape[2:]) != (1, 1)
        for k, v in kohya.items()
    )
    return {"conv_dim": str(rank), "conv_alpha": _str(float(alpha))} if convs else {}


def save_lora_files(
    out_dir: str | Path,
    *,
    unet,
    text_encoder=None,
    alpha: float,
    metadata: Mapping[str, str],
    kohya_name: str | None = None,
) -> LoraFiles:
    """Write both formats of the adapters on ``unet`` (and ``text_encoder``) into ``out_dir``.

    The kohya file is ``<metadata ss_output_name>.safetensors`` unless ``kohya_name`` is given."""
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rank = int(metadata.get("ss_network_dim") or unet.peft_config["default"].r)
    scale = float(alpha) / rank
    unet_peft, te_peft = lora_state_dicts(unet, text_encoder)
    # The U-Net keys stay in PEFT form (``.lora_A``/``.lora_B``). diffusers' examples convert them
    # with ``convert_state_dict_to_diffusers``, but that renames only attention projections
    # (``to_q.lora.down``); with LoRAs on other layers too (target "unet_all") the file mixes
    # both forms, and ``load_lora_weights`` - which judges the form by the first key - silently
    # drops every attention adapter (``load_lora_into`` then refuses the file).
    te_sd = None
    if te_peft:
        te_sd = {
            (k if k.startswith("text_model.") else f"text_model.{k}"): v
            for k, v in convert_state_dict_to_diffusers(bake_scale(te_peft, scale)).items()
        }
    header = {
        **metadata,
        "heritage.lora_scale_in_weights": _str(scale),  # alpha / rank, multiplied into lora_B
    }
    with tempfile.TemporaryDirectory(dir=out, prefix=".tmp-") as tmp:
        StableDiffusionPipeline.save_lora_weights(
            tmp,
            unet_lora_layers=bake_scale(unet_peft, scale),
            text_encoder_lora_layers=te_sd,
            weight_name=DIFFUSERS_WEIGHT_NAME,
            safe_serialization=True,
            unet_lora_adapter_metadata=_adapter_config(unet, rank=rank),
            text_encoder_lora_adapter_metadata=(
                _adapter_config(text_encoder, rank=rank) if te_sd else None
            ),
        )
        written = Path(tmp) / DIFFUSERS_WEIGHT_NAME
        # Add our header to the one diffusers wrote (which holds format + adapter configs).
        tensors, diffusers_header = read_lora_file(written)
        save_file(tensors, str(written), metadata={**diffusers_header, **header})
        shutil.move(str(written), out / DIFFUSERS_WEIGHT_NAME)
    diffusers_path = out / DIFFUSERS_WEIGHT_NAME

    kohya_path, kohya_sha, note = "", "", ""
    unrepresentable = kohya_unrepresentable(unet_peft, te_peft)
    if unrepresentable:
        shown = ", ".join(unrepresentable[:3]) + (", ..." if len(unrepresentable) > 3 else "")
        note = (
            f"No kohya file (A1111, ComfyUI, kohya-ss): {len(unrepresentable)} of this LoRA's "
            f"layers ({shown}) have no place in kohya's SD 1.x LoRA, and those tools would drop "
            f"them without a word, drawing something else than was trained. Use "
            f"{DIFFUSERS_WEIGHT_NAME} (diffusers), or train a target without them."
        )
    else:
        kohya = to_kohya(unet_peft, te_peft, alpha=alpha)
        title = metadata.get("ss_output_name") or metadata.get("modelspec.title", "")
        stem = Path(kohya_name).stem if kohya_name else kohya_file_stem(title)
        # A1111 names the LoRA by ss_output_name, else by the file name: keep them one.
        kohya_meta = {"format": "pt", **metadata, "ss_output_name": stem}
        network_args = _kohya_network_args(kohya, rank=rank, alpha=alpha)
        if network_args:
            kohya_meta["ss_network_args"] = json.dumps(network_args)
        model_hash, legacy_hash = kohya_hashes(kohya, kohya_meta)
        kohya_meta.update(sshs_model_hash=model_hash, sshs_legacy_hash=legacy_hash)
        path = out / f"{stem}.safetensors"
        save_file(kohya, str(path), metadata=kohya_meta)
        kohya_path, kohya_sha = str(path), file_sha256(path)
    return LoraFiles(
        diffusers_path=str(diffusers_path),
        diffusers_sha256=file_sha256(diffusers_path),
        kohya_path=kohya_path,
        kohya_sha256=kohya_sha,
        kohya_note=note,
    )


def check_lora_path(path: str | Path) -> None:
    """Refuse pickles (LoraFileError) and anything else that is not a .safetensors file."""
    refuse_pickle(path, LoraFileError)
    if Path(path).suffix.lower() != ".safetensors":
        raise LoraFileError(f"{Path(path).name}: a LoRA file must be .safetensors.")


def read_lora_file(path: str | Path) -> tuple[dict, dict[str, str]]:
    """Tensors and header of a LoRA file; refuses pickles and unreadable files."""
    from safetensors import SafetensorError, safe_open

    check_lora_path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
            return tensors, dict(handle.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise LoraFileError(f"{Path(path).name}: not a readable safetensors file ({exc}).") from exc


def read_lora_metadata(path: str | Path) -> dict[str, str]:
    return read_lora_file(path)[1]


def load_lora_into(pipe, path: str | Path, *, adapter_name: str = "default") -> None:
    """``pipe.load_lora_weights`` for either format, after the pickle/safetensors check; refuses
    a file whose layers do not all attach (and leaves no adapter behind)."""
    path = Path(path)
    tensors, _header = read_lora_file(path)  # refuses pickles before anything is loaded
    pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=adapter_name)
    # diffusers skips layers it cannot place with at most a log line; a LoRA missing layers
    # draws something else than what was trained, so say so instead.
    missing = _layers_in_file(tensors) - _adapted_layers(pipe, adapter_name)
    if missing:
        pipe.delete_adapters(adapter_name)
        raise LoraFileError(
            f"{path.name}: {len(missing)} LoRA layer(s) could not be attached to this base "
            f"model ({', '.join(sorted(missing)[:3])}{', ...' if len(missing) > 3 else ''}); "
            "the LoRA would not draw what it was trained to. Use the run's diffusers file "
            f"({DIFFUSERS_WEIGHT_NAME}) or the base model it was trained on."
        )


def _flat(name: str) -> str:
    """A layer name in one spelling for all formats: kohya's underscores, no "text_model"."""
    return name.replace(".", "_").replace("text_model_", "")


def _layers_in_file(tensors: Mapping) -> set[str]:
    layers = set()
    for key in tensors:
        if key.endswith(".alpha"):
            continue
        if key.startswith(("lora_unet_", "lora_te_")):  # kohya
            stem = key.split(".", 1)[0]
            layers.add(_flat(stem.replace("lora_unet_", "unet_", 1).replace("lora_te_", "te_", 1)))
        elif ".lora" in key:  # diffusers / PEFT: "<component>.<module>.lora..."
            component, module = key.split(".", 1)
            component = "te" if component == "text_encoder" else component
            layers.add(_flat(f"{component}.{module.split('.lora', 1)[0]}"))
    return layers


def _adapted_layers(pipe, adapter_name: str) -> set[str]:
    layers = set()
    for component, model in (("unet", pipe.unet), ("te", pipe.text_encoder)):
        for name, module in model.named_modules():
            lora_a = getattr(module, "lora_A", None)
            if lora_a is not None and adapter_name in lora_a:
                layers.add(_flat(f"{component}.{name}"))
    return layers
