"""SD 1.5's U-Net built from its configuration (random weights, nothing downloaded):
trainable-parameter share of a LoRA at rank 4 and 8, and the peak memory of one 512 px,
batch 2 training step (cached latents and text embeddings, so only the U-Net runs).

    python bench/bench_sd15_memory.py            # CPU, float32, AdamW (run it once: minutes)
    python bench/bench_sd15_memory.py --cuda     # GPU: fp16 + gradient checkpointing +
                                                 # AdamW 8-bit + cached latents
    python bench/bench_sd15_memory.py --cuda --precision bf16 --no-checkpointing --optimizer adamw
                                                 # any one preset (bench/gpu_check_presets.sh
                                                 # runs them all)

The CPU figure is process RSS (sampled); the GPU figure is torch.cuda.max_memory_allocated,
next to memory.estimate_gpu_memory's pre-flight estimate for the same settings.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch


def parameter_shares() -> None:
    from diffusers import UNet2DConditionModel
    from peft import LoraConfig

    from generation.diffusion.config import UNET_ATTENTION_MODULES
    from generation.diffusion.pipeline import SD15_UNET_CONFIG

    for rank in (4, 8):
        with torch.device("meta"):
            unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        unet.add_adapter(LoraConfig(r=rank, target_modules=list(UNET_ATTENTION_MODULES)))
        lora = sum(p.numel() for n, p in unet.named_parameters() if "lora_" in n)
        total = sum(p.numel() for p in unet.parameters())
        print(
            f"rank {rank}: {lora:,} LoRA parameters on U-Net attention = "
            f"{100 * lora / total:.3f} % of the U-Net's {total:,} (base {total - lora:,})"
        )


def training_step(
    device: str,
    rank: int,
    batch: int,
    size: int,
    *,
    precision: str = "no",
    checkpointing: bool = False,
    optimizer_name: str = "adamw",
) -> None:
    from diffusers import DDPMScheduler, UNet2DConditionModel
    from peft import LoraConfig

    from generation.diffusion.config import LoraTrainingConfig
    from generation.diffusion.memory import GIB, PeakMemory, estimate_gpu_memory
    from generation.diffusion.pipeline import SD15_SCHEDULER_CONFIG, SD15_UNET_CONFIG

    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision, torch.float32)
    half = dtype != torch.float32
    torch.manual_seed(0)
    with PeakMemory(device) as peak:
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG).to(device, dtype)
        unet.requires_grad_(False)
        unet.add_adapter(
            LoraConfig(
                r=rank,
                lora_alpha=rank,
                init_lora_weights="gaussian",
                target_modules=["to_k", "to_q", "to_v", "to_out.0"],
            )
        )
        params = [p for p in unet.parameters() if p.requires_grad]
        for p in params:
            p.data = p.data.float()  # LoRA master weights in fp32, as the training loop
        if checkpointing:
            unet.enable_gradient_checkpointing()
        if optimizer_name == "adamw8bit":
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(params, lr=1e-4)
        else:
            optimizer = torch.optim.AdamW(params, lr=1e-4)
        scheduler = DDPMScheduler.from_config(SD15_SCHEDULER_CONFIG)
        # Cached latents and text embeddings: the VAE and text encoder do not run.
        latents = torch.randn(batch, 4, size // 8, size // 8, device=device)
        hidden = torch.randn(batch, 77, 768, device=device, dtype=dtype)
        unet.train()
        start = time.perf_counter()
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, 1000, (batch,), device=device)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        with torch.autocast("cuda", dtype=dtype, enabled=half and device == "cuda"):
            pred = unet(noisy.to(dtype), timesteps, hidden, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(pred.float(), noise)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    settings = (
        f"{precision if half else 'float32'}, gradient checkpointing "
        f"{'on' if checkpointing else 'off'}, {optimizer_name}"
    )
    print(
        f"{device}: one {size} px batch {batch} step, rank {rank}, {settings}, cached latents: "
        f"{seconds:.1f} s; peak {peak.kind} {peak.peak_bytes / GIB:.2f} GiB "
        f"(rise during the step block {peak.peak_increase_bytes / GIB:.2f} GiB)"
    )
    config = LoraTrainingConfig(
        resolution=size,
        train_batch_size=batch,
        rank=rank,
        mixed_precision=precision if half else "no",
        gradient_checkpointing=checkpointing,
        optimizer=optimizer_name,
        cache_latents=True,
    )
    estimate = estimate_gpu_memory(config)
    print(
        f"pre-flight GPU estimate for these settings (SD 1.5 incl. VAE + text encoder): "
        f"{estimate.describe()}"
    )
    if device == "cuda":  # the U-Net alone ran here: compare like with like
        print(
            f"measured/estimated (U-Net step vs whole-model estimate): "
            f"{peak.peak_bytes / estimate.total:.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cuda", action="store_true")
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--shares-only", action="store_true")
    parser.add_argument("--precision", choices=["no", "fp16", "bf16"], default=None)
    parser.add_argument("--no-checkpointing", action="store_true")
    parser.add_argument("--optimizer", choices=["adamw", "adamw8bit"], default=None)
    args = parser.parse_args()
    parameter_shares()
    if args.shares_only:
        return
    # --cuda defaults to the lean preset (fp16, checkpointing, 8-bit Adam); CPU to float32 AdamW.
    lean = args.cuda
    training_step(
        "cuda" if args.cuda else "cpu",
        args.rank,
        args.batch,
        args.size,
        precision=args.precision or ("fp16" if lean else "no"),
        checkpointing=lean and not args.no_checkpointing,
        optimizer_name=args.optimizer or ("adamw8bit" if lean else "adamw"),
    )


if __name__ == "__main__":
    main()
