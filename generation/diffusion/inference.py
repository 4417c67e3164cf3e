"""Image generation with a warm, bounded pipeline cache (no Django).

A gpu worker is one long-lived process (rq SimpleWorker), so ``CACHE`` lives as long as the
worker: a base model is loaded once and reused by every later job; LoRAs are attached as named
peft adapters and switched on, off or re-weighted per image without reloading the base. Both
the bases and each base's adapters are kept in LRU order and evicted past their bounds.

Determinism: every image is rendered on its own with a CPU ``torch.Generator`` seeded with its
seed, so the same request and seed give the same image whatever else is in the request.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SAMPLERS = ("ddim", "euler", "dpmpp")
MAX_PROMPT_TOKENS = 75  # CLIP's 77 positions minus the start and end tokens
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 150
MAX_SIDE = 2048
MIN_SIDE = 64
MAX_PIXELS = 1024 * 1024
MAX_IMAGES = 16
MAX_CFG = 30.0
# Shapes people ask for, as multiples of the model's native side (SD 1.5 at 512 px: square
# 512x512, hanging scroll 512x1024 (1:2), handscroll 1024x256 (4:1)).
SHAPES: dict[str, tuple[float, float]] = {
    "square": (1.0, 1.0),
    "hanging_scroll": (1.0, 2.0),
    "handscroll": (2.0, 0.5),
}


def shape_size(shape: str, native: int) -> tuple[int, int]:
    """(width, height) of a ``SHAPES`` preset for a model of ``native`` px, multiples of 8."""
    w, h = SHAPES[shape]
    return (max(8, round(native * w / 8) * 8), max(8, round(native * h / 8) * 8))


@dataclass(frozen=True)
class BaseSpec:
    """Where a base model lies: a diffusers folder or one SD 1.x .safetensors checkpoint."""

    path: str
    kind: str = "diffusers"  # diffusers | single_file


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA file in diffusers/PEFT format on local disk, named by its sha256."""

    path: str
    sha256: str

    @property
    def adapter_name(self) -> str:
        return f"lora_{self.sha256[:16]}"


@dataclass(frozen=True)
class RenderSettings:
    prompt: str
    negative_prompt: str = ""
    sampler: str = "ddim"
    steps: int = 35
    cfg: float = 7.0
    width: int = 512
    height: int = 512


# --- limits ------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _tokenizer(tokenizer_dir: str):
    from generation.diffusion.tokenizer import load_tokenizer

    return load_tokenizer(Path(tokenizer_dir))


def prompt_token_count(prompt: str, tokenizer_dir: str | Path) -> int:
    """CLIP tokens of ``prompt`` without the start/end tokens (no torch needed)."""
    return len(_tokenizer(str(tokenizer_dir))(prompt, truncation=False).input_ids) - 2


def check_render_settings(
    settings: RenderSettings, *, images: int, tokenizer_dir: str | Path | None, sample_size: int
) -> list[str]:
    """Every refused setting as a sentence. ``sample_size`` is the model's native pixel size."""
    errors: list[str] = []
    prompt = settings.prompt.strip()
    if not prompt:
        errors.append("The prompt is empty: write a prompt or choose a passage with one.")
    elif len(prompt) > MAX_PROMPT_CHARS:
        errors.append(f"The prompt is {len(prompt)} characters long; at most {MAX_PROMPT_CHARS}.")
    elif tokenizer_dir is not None:
        # Refused, not truncated: CLIP silently drops tokens past 77, so the image would not
        # match the prompt stored beside it (and shown to experts).
        count = prompt_token_count(prompt, tokenizer_dir)
        if count > MAX_PROMPT_TOKENS:
            errors.append(
                f"The prompt is {count} CLIP tokens long (with the trigger token); the text "
                f"encoder reads at most {MAX_PROMPT_TOKENS}. Shorten it."
            )
        if settings.negative_prompt:
            negative = prompt_token_count(settings.negative_prompt, tokenizer_dir)
            if negative > MAX_PROMPT_TOKENS:
                errors.append(
                    f"The negative prompt is {negative} CLIP tokens long; at most "
                    f"{MAX_PROMPT_TOKENS}."
                )
    if settings.sampler not in SAMPLERS:
        errors.append(f"Unknown sampler {settings.sampler!r}; use one of {', '.join(SAMPLERS)}.")
    if not (isinstance(settings.steps, int) and 1 <= settings.steps <= MAX_STEPS):
        errors.append(f"Steps must be between 1 and {MAX_STEPS} (got {settings.steps!r}).")
    if not (1.0 <= float(settings.cfg) <= MAX_CFG):
        errors.append(f"CFG scale must be between 1 and {MAX_CFG:g} (got {settings.cfg!r}).")
    low = min(MIN_SIDE, sample_size)
    for name, side in (("width", settings.width), ("height", settings.height)):
        if not isinstance(side, int) or side % 8:
            errors.append(
                f"The {name} must be a multiple of 8 pixels (the VAE works on 8-pixel "
                f"blocks); got {side!r}."
            )
        elif not low <= side <= MAX_SIDE:
            errors.append(f"The {name} must be between {low} and {MAX_SIDE} pixels (got {side}).")
    if (
        isinstance(settings.width, int)
        and isinstance(settings.height, int)
        and settings.width * settings.height > MAX_PIXELS
    ):
        errors.append(
            f"{settings.width}x{settings.height} is too big: at most {MAX_PIXELS} pixels "
            "(e.g. 1024x1024); SD 1.x is trained at 512x512."
        )
    if not 1 <= images <= MAX_IMAGES:
        errors.append(f"Between 1 and {MAX_IMAGES} images per request (got {images}).")
    return errors


# --- loading -----------------------------------------------------------------------------------


def torch_device() -> tuple[str, Any]:
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.float16
    return "cpu", torch.float32


def load_base_on_device(base: BaseSpec):
    """The cache's loader: ``pipeline.load_base_pipeline`` (local files, safetensors only, no
    safety checker) in the accelerator's dtype, moved onto it."""
    from generation.diffusion.pipeline import load_base_pipeline

    device, dtype = torch_device()
    return load_base_pipeline(base.path, dtype=dtype).to(device)


def check_base_model_cli(path: str) -> None:
    """Print the base model's description as JSON, or {"error": why} (run in a subprocess).

    The web process validates a base model through this in a child process: loading SD 1.5
    takes seconds and gigabytes, and the web process must never import torch.
    """
    import json
    import sys

    from generation.diffusion.pipeline import BaseModelError, validate_base_model

    try:
        info = validate_base_model(path)
    except BaseModelError as exc:
        print(json.dumps({"error": str(exc)}))
        sys.exit(0)
    print(
        json.dumps(
            {"kind": info.kind, "sha256": info.sha256, "resolution": info.resolution},
        )
    )


def scheduler_for(sampler: str, base_config: dict[str, Any]):
    """A fresh scheduler of ``sampler`` built from the base model's scheduler config."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler

    if sampler == "ddim":
        return DDIMScheduler.from_config(base_config)
    if sampler == "euler":
        return EulerDiscreteScheduler.from_config(base_config)
    if sampler == "dpmpp":
        return DPMSolverMultistepScheduler.from_config(
            base_config, algorithm_type="dpmsolver++", solver_order=2
        )
    raise ValueError(f"Unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}.")


class _Entry:
    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.scheduler_config = dict(pipe.scheduler.config)
        self.adapters: OrderedDict[str, None] = OrderedDict()


class PipelineCache:
    """Base pipelines (LRU, ``max_bases``) each with up to ``max_adapters`` LoRA adapters."""

    def __init__(
        self,
        *,
        max_bases: int = 1,
        max_adapters: int = 4,
        loader: Callable[[BaseSpec], Any] = load_base_on_device,
    ) -> None:
        self.max_bases, self.max_adapters, self.loader = max_bases, max_adapters, loader
        self._entries: OrderedDict[BaseSpec, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.base_loads = 0
        self.lora_loads = 0

    def entry(self, base: BaseSpec) -> _Entry:
        with self._lock:
            if base in self._entries:
                self._entries.move_to_end(base)
                return self._entries[base]
            while len(self._entries) >= self.max_bases:
                self._entries.popitem(last=False)
                _free_accelerator_memory()
            entry = _Entry(self.loader(base))
            self.base_loads += 1
            self._entries[base] = entry
            return entry

    def pipeline(self, base: BaseSpec):
        return self.entry(base).pipe

    def use_lora(self, base: BaseSpec, lora: LoraSpec | None, scale: float = 1.0):
        """The base's pipeline with only ``lora`` active at ``scale`` (or no LoRA at all)."""
        entry = self.entry(base)
        pipe = entry.pipe
        if lora is None:
            if entry.adapters:
                pipe.disable_lora()
            return pipe
        name = lora.adapter_name
        if name in entry.adapters:
            entry.adapters.move_to_end(name)
        else:
            from generation.diffusion.lora_files import check_lora_path, load_lora_into

            check_lora_path(lora.path)  # before an adapter is evicted for it
            while len(entry.adapters) >= self.max_adapters:
                oldest, _ = entry.adapters.popitem(last=False)
                pipe.delete_adapters(oldest)
            load_lora_into(pipe, lora.path, adapter_name=name)
            self.lora_loads += 1
            entry.adapters[name] = None
        pipe.enable_lora()
        pipe.set_adapters([name], adapter_weights=[float(scale)])
        return pipe

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        _free_accelerator_memory()


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


# The worker process's cache: one base model warm at a time (SD 1.5 in fp16 is ~2 GB).
CACHE = PipelineCache()

StepCallback = Callable[[int, int], None]


def render(
    pipe,
    settings: RenderSettings,
    seed: int,
    *,
    scheduler_config: dict[str, Any] | None = None,
    on_step: StepCallback | None = None,
):
    """One image (PIL) of ``settings`` from ``seed``; ``on_step(done, total)`` after each step."""
    import torch

    pipe.scheduler = scheduler_for(
        settings.sampler, scheduler_config or dict(pipe.scheduler.config)
    )
    generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def step_end(_pipe, step: int, _timestep, callback_kwargs):
        if on_step is not None:
            on_step(step + 1, settings.steps)
        return callback_kwargs

    with torch.inference_mode():
        result = pipe(
            prompt=settings.prompt,
            negative_prompt=settings.negative_prompt or None,
            num_inference_steps=settings.steps,
            guidance_scale=settings.cfg,
            width=settings.width,
            height=settings.height,
            generator=generator,
            callback_on_step_end=step_end,
        )
    return result.images[0]


def render_with_cache(
    cache: PipelineCache,
    base: BaseSpec,
    settings: RenderSettings,
    seed: int,
    *,
    lora: LoraSpec | None = None,
    lora_scale: float = 1.0,
    on_step: StepCallback | None = None,
):
    pipe = cache.use_lora(base, lora, lora_scale)
    entry = cache.entry(base)
    return render(pipe, settings, seed, scheduler_config=entry.scheduler_config, on_step=on_step)


def contact_sheet(rows: list[tuple[int, dict[str, Any]]], *, title: str = "") -> Any:
    """A PNG-ready PIL image: one row per seed, one column per condition (base | lora)."""
    from PIL import Image, ImageDraw

    conditions = sorted({c for _, images in rows for c in images}, key=["base", "lora"].index)
    cell_w = max(img.width for _, images in rows for img in images.values())
    cell_h = max(img.height for _, images in rows for img in images.values())
    label_h, margin = 14, 4
    width = margin + len(conditions) * (cell_w + margin)
    height = label_h * 2 + margin + len(rows) * (cell_h + label_h + margin)
    sheet = Image.new("RGB", (max(width, 160), height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((margin, 2), f"AI-generated. {title}"[:80], fill="black")
    for column, condition in enumerate(conditions):
        x = margin + column * (cell_w + margin)
        draw.text((x, label_h + 2), "base model" if condition == "base" else "LoRA", fill="black")
    for row, (seed, images) in enumerate(rows):
        y = label_h * 2 + margin + row * (cell_h + label_h + margin)
        for column, condition in enumerate(conditions):
            x = margin + column * (cell_w + margin)
            if condition in images:
                sheet.paste(images[condition].convert("RGB"), (x, y))
            draw.text((x, y + cell_h + 1), f"seed {seed}", fill="black")
    return sheet


@lru_cache(maxsize=1)
def _installed_versions() -> tuple[tuple[str, str], ...]:
    # Scanning the installed distributions takes ~20 ms; they do not change in a process.
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("torch", "diffusers", "transformers", "peft", "safetensors"):
        try:
            versions.append((package, version(package)))
        except PackageNotFoundError:
            continue
    return tuple(versions)


def software_versions() -> dict[str, str]:
    """Versions of the ML packages, for provenance chunks (a fresh dict each call)."""
    return dict(_installed_versions())
