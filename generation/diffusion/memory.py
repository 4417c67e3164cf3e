"""Memory: a pre-flight estimate of a run's GPU memory, and measuring the real peak.

The estimate is arithmetic, not a measurement: frozen weights at their dtype, the LoRA
parameters with their gradients and optimizer state, and activations that scale with
batch x resolution^2. The activation figure per 512 px sample of SD 1.5's U-Net
(``ACTIVATION_BYTES_512``) is calibrated on bench/bench_sd15_memory.py: one float32 step at
512 px, batch 2, rose the RSS by 7.98 GiB of which 3.2 GiB are U-Net weights, i.e. about
2.4 GiB of activations per sample in float32, 1.2 GiB in fp16 (SDPA attention, no
checkpointing); gradient checkpointing keeps roughly a quarter of that. The estimate is meant
to refuse runs that clearly cannot fit, with a 15 % margin on top.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

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

    @property
    def total(self) -> int:
        return int((self.weights + self.lora_training + self.activations + self.overhead) * MARGIN)

    def describe(self) -> str:
        def gib(value: int) -> str:
            return f"{value / GIB:.2f}"

        return (
            f"about {gib(self.total)} GiB (frozen weights {gib(self.weights)}, LoRA + gradients "
            f"+ optimizer {gib(self.lora_training)}, activations {gib(self.activations)}, "
            f"workspace {gib(self.overhead)}, +15% margin)"
        )


def estimate_gpu_memory(config: LoraTrainingConfig) -> MemoryEstimate:
    """Estimated peak GPU bytes of training ``config`` on SD 1.5 (the papers' base model)."""
    half = config.mixed_precision in ("fp16", "bf16")
    weight_bytes = 2 if half else 4
    weights = (SD15_UNET_PARAMS + SD15_VAE_PARAMS + SD15_TEXT_ENCODER_PARAMS) * weight_bytes
    lora = sd15_lora_parameters(config)
    optimizer_bytes = 2 if config.optimizer == "adamw8bit" else 8  # two moments per param
    lora_training = lora * (4 + 4 + optimizer_bytes)  # fp32 master weights + fp32 grads
    scale = (config.resolution / 512) ** 2 * config.train_batch_size
    activations = ACTIVATION_BYTES_512[bool(config.gradient_checkpointing)] * scale
    if not half:
        activations *= 2
    if not config.cache_latents:
        activations += VAE_ENCODE_BYTES_512 * scale * (1 if half else 2)
    if config.trains_text_encoder:
        activations += TEXT_ENCODER_ACTIVATION_BYTES * config.train_batch_size
    return MemoryEstimate(
        weights=int(weights),
        lora_training=int(lora_training),
        activations=int(activations),
        overhead=CUDA_WORKSPACE_BYTES,
        lora_parameters=lora,
    )


def check_fits(config: LoraTrainingConfig, gpu_gib: float) -> tuple[bool, int, str]:
    """(fits, estimated bytes, message) for a worker GPU of ``gpu_gib`` GiB."""
    estimate = estimate_gpu_memory(config)
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
    return (
        False,
        total,
        f"This run needs {estimate.describe()}, more than the worker GPU's {gpu_gib:g} GiB."
        + advice,
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
