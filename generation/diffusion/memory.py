"""Memory: a pre-flight estimate of a run's GPU memory, and measuring the real peak.

The estimate is arithmetic, not a measurement: frozen weights at their dtype, the LoRA
parameters with their gradients and optimizer state, and activations that scale with
batch x resolution^2. The activation figure per 512 px sample of SD 1.5's U-Net
(``ACTIVATION_BYTES_512``) is calibrated on bench/bench_sd15_memory.py: one float32 step at
512 px, batch 2, rose the RSS by 7.98 GiB of which 3.2 GiB are U-Net weights, i.e. about
2.4 GiB of activations per sample in float32, 1.2 GiB in fp16 (SDPA attention, no
checkpointing); gradient checkpointing keeps roughly a quarter of that.

The estimate is for the base model actually registered: parameter counts and LoRA layer sizes
are read from its safetensors headers (``model_sizes``, no weights loaded); SD 1.5's counts are
the default when no model is given. Activations scale from the SD 1.5 calibration by U-Net
size and latent area, which is a guess: ``check_fits`` warns above the device and refuses only
above ``REFUSE_FACTOR`` x the device, where the guess cannot be what decides.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from generation.diffusion.config import LoraTrainingConfig

GIB = 1024**3

# SD 1.5's parameter counts (from its configs; see pipeline.SD15_*_CONFIG).
SD15_UNET_PARAMS = 859_520_964
SD15_VAE_PARAMS = 83_653_863
SD15_TEXT_ENCODER_PARAMS = 123_060_480
# Sum of the transformer-block widths of SD 1.5's U-Net (16 blocks) and its text width.
SD15_BLOCK_WIDTH_SUM = 12_480
SD15_BLOCKS = 16
SD15_CONTEXT = 768
SD15_TEXT_LAYERS = 12
# "unet_all" adds r * (in + out) per linear and r * (in * k * k + out) per conv layer; summed over
# SD 1.5's U-Net (built on the meta device, see tests/generation/diffusion/test_memory.py):
SD15_UNET_ALL_PARAMS_PER_RANK = 1_000_576

# Activation memory kept for backward, per sample at 512 px, at 2 bytes per element (fp16).
ACTIVATION_BYTES_512 = {False: int(1.3 * GIB), True: int(0.35 * GIB)}  # by gradient checkpointing
VAE_ENCODE_BYTES_512 = int(0.4 * GIB)  # transient, no grad; only when latents are not cached
TEXT_ENCODER_ACTIVATION_BYTES = int(0.05 * GIB)  # per sample, when it is trained
CUDA_WORKSPACE_BYTES = int(0.4 * GIB)  # cuBLAS/cuDNN workspaces, allocator fragmentation
MARGIN = 1.15
REFUSE_FACTOR = 1.5  # refuse only what clearly cannot fit; warn between 1x and this


@dataclass(frozen=True)
class ModelSizes:
    """What the estimate needs of a base model, read from its safetensors headers."""

    unet: int
    vae: int
    text_encoder: int
    # weight shapes of the U-Net's and text encoder's layers, by module name
    unet_layers: dict[str, tuple[int, ...]]
    text_encoder_layers: dict[str, tuple[int, ...]]
    latent_scale: int = 8  # image px per latent px (2 ** (VAE levels - 1))
    name: str = "SD 1.5"


def _header_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return {k: tuple(v["shape"]) for k, v in header.items()}


def _count(shapes: dict[str, tuple[int, ...]]) -> int:
    total = 0
    for shape in shapes.values():
        n = 1
        for size in shape:
            n *= size
        total += n
    return total


def _layers(shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    return {k.removesuffix(".weight"): v for k, v in shapes.items() if len(v) in (2, 4)}


def model_sizes(path: str | Path) -> ModelSizes:
    """Sizes of a diffusers folder or an SD 1.x single file, from headers only."""
    path = Path(path)
    if path.is_file():
        shapes = _header_shapes(path)

        def part(prefix: str) -> dict[str, tuple[int, ...]]:
            return {k[len(prefix) :]: v for k, v in shapes.items() if k.startswith(prefix)}

        unet = part("model.diffusion_model.")
        vae = part("first_stage_model.")
        te = {
            k.removeprefix("text_model."): v
            for k, v in part("cond_stage_model.transformer.").items()
        }
        levels = len({k.split(".")[2] for k in vae if k.startswith("decoder.up.")}) or 4
    else:

        def folder(name: str) -> dict[str, tuple[int, ...]]:
            shapes: dict[str, tuple[int, ...]] = {}
            for file in sorted((path / name).glob("*.safetensors")):
                shapes.update(_header_shapes(file))
            return shapes

        unet, vae = folder("unet"), folder("vae")
        te = {k.removeprefix("text_model."): v for k, v in folder("text_encoder").items()}
        config = json.loads((path / "vae" / "config.json").read_text(encoding="utf-8"))
        levels = len(config.get("block_out_channels", [0] * 4))
    return ModelSizes(
        unet=_count(unet),
        vae=_count(vae),
        text_encoder=_count(te),
        unet_layers=_layers(unet),
        text_encoder_layers=_layers(te),
        latent_scale=2 ** (levels - 1),
        name=path.name,
    )


def _targeted(name: str, targets: list[str] | str) -> bool:
    """peft's rule: a str is one full-match regex, a list matches names ending in an item."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith(f".{t}") for t in targets)


def lora_parameters(config: LoraTrainingConfig, model: ModelSizes) -> int:
    """LoRA parameters the config adds to ``model``: r * (in + out) per Linear, r * (in * k * k +
    out) per conv. Single files name the U-Net in the original layout, where peft's diffusers
    module names do not apply: their count falls back to SD 1.5's, scaled by U-Net size."""
    from generation.diffusion.config import TEXT_ENCODER_MODULES

    def count(layers: dict[str, tuple[int, ...]], targets) -> int:
        total = 0
        for name, shape in layers.items():
            if _targeted(name, targets):
                fan_in = shape[1] * (shape[2] * shape[3] if len(shape) == 4 else 1)
                total += config.rank * (fan_in + shape[0])
        return total

    unet = count(model.unet_layers, config.unet_target_modules)
    if unet == 0 and model.unet_layers:
        sd15 = sd15_lora_parameters(config.replace(target="unet_cross_attention"))
        unet = int(sd15 * model.unet / SD15_UNET_PARAMS)
    if config.trains_text_encoder:
        unet += count(model.text_encoder_layers, list(TEXT_ENCODER_MODULES))
    return unet


def sd15_lora_parameters(config: LoraTrainingConfig) -> int:
    """Exact count of LoRA parameters on SD 1.5 for the config's target and rank.

    A LoRA on a Linear(in, out) adds rank * (in + out) parameters. Per transformer block of
    width d: self-attention q, k, v, out are d -> d; cross-attention q, out are d -> d and k, v
    are 768 -> d. "unet_all" (every block layer, resnet convs included) is counted once, per rank.
    """
    r = config.rank
    if config.target == "unet_all":
        return r * SD15_UNET_ALL_PARAMS_PER_RANK
    d_sum = SD15_BLOCK_WIDTH_SUM
    cross = r * (4 * d_sum + 2 * (d_sum + SD15_BLOCKS * SD15_CONTEXT))
    self_attention = r * 4 * 2 * d_sum
    count = cross if config.target != "unet_attention" else cross + self_attention
    if config.trains_text_encoder:
        count += SD15_TEXT_LAYERS * 4 * r * (SD15_CONTEXT + SD15_CONTEXT)
    return count


@dataclass(frozen=True)
class MemoryEstimate:
    weights: int
    lora_training: int  # LoRA params + grads + optimizer state
    activations: int
    overhead: int
    lora_parameters: int
    assumptions: str = ""

    @property
    def total(self) -> int:
        return int((self.weights + self.lora_training + self.activations + self.overhead) * MARGIN)

    def describe(self) -> str:
        def gib(value: int) -> str:
            return f"{value / GIB:.2f}"

        return (
            f"about {gib(self.total)} GiB (frozen weights {gib(self.weights)}, LoRA + gradients "
            f"+ optimizer {gib(self.lora_training)}, activations {gib(self.activations)}, "
            f"workspace {gib(self.overhead)}, +15% margin; {self.assumptions})"
        )


def largest_bucket(config: LoraTrainingConfig) -> tuple[int, int]:
    """(width, height) of the bucket with the most pixels: activations peak on its batches."""
    bucket = max(config.buckets(), key=lambda b: (b.area, -abs(b.width - b.height)))
    return bucket.width, bucket.height


def estimate_gpu_memory(
    config: LoraTrainingConfig,
    model: ModelSizes | None = None,
    *,
    bucket: tuple[int, int] | None = None,
) -> MemoryEstimate:
    """Estimated peak GPU bytes of training ``config`` on ``model`` (default: SD 1.5), at
    ``bucket`` (width, height; default the largest bucket of the settings)."""
    half = config.mixed_precision in ("fp16", "bf16")
    weight_bytes = 2 if half else 4
    if model is None:
        unet, vae, te = SD15_UNET_PARAMS, SD15_VAE_PARAMS, SD15_TEXT_ENCODER_PARAMS
        lora, latent_scale, name = sd15_lora_parameters(config), 8, "SD 1.5"
    else:
        unet, vae, te = model.unet, model.vae, model.text_encoder
        lora, latent_scale, name = lora_parameters(config, model), model.latent_scale, model.name
    weights = (unet + vae + te) * weight_bytes
    optimizer_bytes = 2 if config.optimizer == "adamw8bit" else 8  # two moments per param
    lora_training = lora * (4 + 4 + optimizer_bytes)  # fp32 master weights + fp32 grads
    # SD 1.5's calibration, scaled by latent area and U-Net size (a guess for other models).
    width, height = bucket or largest_bucket(config)
    latent_area = (width / latent_scale / 64) * (height / latent_scale / 64)
    scale = latent_area * config.train_batch_size * min(1.0, unet / SD15_UNET_PARAMS)
    activations = ACTIVATION_BYTES_512[bool(config.gradient_checkpointing)] * scale
    if not half:
        activations *= 2
    if not config.cache_latents:
        activations += VAE_ENCODE_BYTES_512 * scale * (1 if half else 2)
    if config.trains_text_encoder:
        activations += TEXT_ENCODER_ACTIVATION_BYTES * config.train_batch_size
    optimizer = "AdamW 8-bit" if config.optimizer == "adamw8bit" else "AdamW"
    assumptions = (
        f"{name}, {config.mixed_precision if half else 'fp32'} weights, batch "
        f"{config.train_batch_size} at {_size_text(width, height)}, gradient checkpointing "
        f"{'on' if config.gradient_checkpointing else 'off'}, {optimizer}, latents "
        f"{'cached' if config.cache_latents else 'encoded each step'}"
    )
    return MemoryEstimate(
        weights=int(weights),
        lora_training=int(lora_training),
        activations=int(activations),
        overhead=CUDA_WORKSPACE_BYTES,
        lora_parameters=lora,
        assumptions=assumptions,
    )


def _size_text(width: int, height: int) -> str:
    return f"{width} px" if width == height else f"{width}x{height} px (largest bucket)"


def check_fits(
    config: LoraTrainingConfig,
    gpu_gib: float,
    model: ModelSizes | None = None,
    *,
    bucket: tuple[int, int] | None = None,
) -> tuple[bool, int, str]:
    """(fits, estimated bytes, message) for a worker GPU of ``gpu_gib`` GiB.

    ``fits`` is False only above REFUSE_FACTOR x the GPU; between 1x and that the message
    warns (an estimate is not a measurement)."""
    estimate = estimate_gpu_memory(config, model, bucket=bucket)
    total = estimate.total
    if total <= gpu_gib * GIB:
        return True, total, f"Estimated GPU memory {estimate.describe()} fits in {gpu_gib:g} GiB."
    hints = []
    if config.mixed_precision == "no":
        hints.append("mixed precision fp16")
    if not config.gradient_checkpointing:
        hints.append("gradient checkpointing")
    if config.optimizer != "adamw8bit":
        hints.append("AdamW 8-bit")
    if not config.cache_latents:
        hints.append("latent caching")
    if config.train_batch_size > 1:
        hints.append("a smaller batch")
    advice = f" Try {', '.join(hints)}." if hints else ""
    if total <= REFUSE_FACTOR * gpu_gib * GIB:
        return (
            True,
            total,
            f"Warning: this run may not fit: estimated {estimate.describe()}, above the worker "
            f"GPU's {gpu_gib:g} GiB (an estimate; it is refused only above "
            f"{REFUSE_FACTOR:g}x).{advice}",
        )
    return (
        False,
        total,
        f"This run needs {estimate.describe()}, more than {REFUSE_FACTOR:g}x the worker "
        f"GPU's {gpu_gib:g} GiB." + advice,
    )


class PeakMemory:
    """Peak memory of a block: CUDA ``max_memory_allocated``, or sampled process RSS on CPU.

    RSS is sampled every 5 ms on a thread (``ru_maxrss`` would be the peak of the whole
    process lifetime, useless in a long-lived worker); ``peak_bytes`` is the absolute RSS peak
    and ``peak_increase_bytes`` the rise above the RSS at entry.
    """

    def __init__(self, device: str = "cpu", interval: float = 0.005) -> None:
        self.device = str(device)
        self.interval = interval
        self.kind = "cuda_max_allocated" if self.device.startswith("cuda") else "cpu_rss_peak"
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def peak_increase_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)

    def sample(self) -> int:
        if self.kind == "cuda_max_allocated":
            import torch

            self.peak_bytes = max(self.peak_bytes, torch.cuda.max_memory_allocated(self.device))
        else:
            self.peak_bytes = max(self.peak_bytes, _rss())
        return self.peak_bytes

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, _rss())

    def __enter__(self) -> PeakMemory:
        if self.kind == "cuda_max_allocated":
            import torch

            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_bytes = torch.cuda.memory_allocated(self.device)
        else:
            self.start_bytes = _rss()
            self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
            self._thread.start()
        self.peak_bytes = self.start_bytes
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self.sample()


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:  # Linux fallback
        with open("/proc/self/statm") as handle:
            import os

            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
