"""Seconds per LoRA training step and peak memory: train_lora (cached latents + text
embeddings) against a reference loop in the style of diffusers'
examples/text_to_image/train_text_to_image_lora.py (VAE and text encoder run every step).

Same tiny SD-format model, same images and captions, same LoRA (rank 4 on U-Net attention),
AdamW, batch 4; each side runs in its own subprocess so RSS peaks don't mix; the sides
alternate for ``--rounds`` rounds and the medians are compared.

    python bench/bench_training.py --steps 60 --size 64 --rounds 3

``--sd15``: the same comparison on SD 1.5's real architecture (U-Net 860 M, CLIP ViT-L/14,
VAE; random weights built from its configs, nothing downloaded, saved once as fp16), then
train_lora alone with each preset's LoRA settings (atlas-000: U-Net attention, AdamW;
gazetteer-001: cross-attention + text encoder, AdamW 8-bit, text encoder every step):

    python bench/bench_training.py --sd15 --size 256 --batch 1 --steps 3 --rounds 1 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def examples(count: int, size: int):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    return [
        (Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)), f"silk {i}")
        for i in range(count)
    ]


def run_reference(base: Path, steps: int, size: int, batch: int) -> dict:
    """The diffusers example's inner loop, trimmed to what matters for cost."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    from generation.diffusion.memory import PeakMemory
    from generation.diffusion.pipeline import load_base_pipeline
    from generation.diffusion.train import _load_image

    with PeakMemory("cpu") as peak:
        torch.manual_seed(0)
        pipe = load_base_pipeline(base)
        unet, vae, text_encoder, tokenizer = pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer
        noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
        for model in (unet, vae, text_encoder):
            model.requires_grad_(False)
        unet.add_adapter(
            LoraConfig(
                r=4,
                lora_alpha=4,
                init_lora_weights="gaussian",
                target_modules=["to_k", "to_q", "to_v", "to_out.0"],
            )
        )
        params = [p for p in unet.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4, weight_decay=1e-2)
        data = examples(8, size)
        pixels = torch.stack([_load_image(image, size) for image, _ in data])
        ids = tokenizer(
            [c for _, c in data],
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        unet.train()
        start = time.perf_counter()
        for step in range(steps):
            index = torch.arange(step * batch, step * batch + batch) % len(data)
            latents = vae.encode(pixels[index]).latent_dist.sample() * vae.config.scaling_factor
            noise = torch.randn_like(latents)
            timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch,))
            noisy = noise_scheduler.add_noise(latents, noise, timesteps)
            hidden = text_encoder(ids[index], return_dict=False)[0]
            pred = unet(noisy, timesteps, hidden, return_dict=False)[0]
            loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad()
        seconds = time.perf_counter() - start
    return {"seconds_per_step": seconds / steps, "peak_rss": peak.peak_bytes}


def run_ours(base: Path, steps: int, size: int, batch: int, preset: str = "") -> dict:
    from generation.diffusion.config import LoraTrainingConfig, preset_config
    from generation.diffusion.memory import PeakMemory
    from generation.diffusion.train import train_lora

    common = {
        "resolution": size,
        "train_batch_size": batch,
        "max_steps": steps,
        "checkpoint_every_epochs": 10_000,
        "validation_prompts": (),
    }
    if preset:  # the preset's LoRA, optimizer and caching; our size, batch and length
        config = preset_config(preset, **common)
    else:
        config = LoraTrainingConfig(
            rank=4, alpha=4.0, cache_latents=True, cache_text_embeddings=True, **common
        )
    with PeakMemory("cpu") as peak, tempfile.TemporaryDirectory() as out:
        result = train_lora(config, examples(8, size), base_model=base, output_dir=out)
    return {
        "seconds_per_step": result.seconds_per_step,
        "seconds_total": result.seconds,
        "peak_rss": peak.peak_bytes,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--side", choices=["reference", "ours"])
    parser.add_argument("--preset", default="")
    parser.add_argument("--base")
    parser.add_argument("--sd15", action="store_true", help="SD 1.5's architecture, random")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    if args.side:
        if args.side == "reference":
            result = run_reference(Path(args.base), args.steps, args.size, args.batch)
        else:
            result = run_ours(Path(args.base), args.steps, args.size, args.batch, args.preset)
        print(json.dumps(result))
        return

    def side(name: str, base: Path, preset: str = "") -> dict:
        command = [sys.executable, __file__, "--side", name, "--base", str(base)]
        command += ["--steps", str(args.steps), "--size", str(args.size), "--preset", preset]
        command += ["--batch", str(args.batch), "--threads", str(args.threads)]
        out = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
        return json.loads(out.stdout.strip().splitlines()[-1])

    presets: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "model"
        if args.sd15:
            build_sd15(base)
        else:
            from demo.tiny import build_tiny_pipeline

            build_tiny_pipeline(base, seed=0, sample_size=args.size)
        # Alternate the sides for several rounds: on a shared machine, load that comes and goes
        # then hits both alike, and the median of each side is what we compare.
        runs: dict[str, list[dict]] = {"reference": [], "ours": []}
        for _ in range(args.rounds):
            for name in ("reference", "ours"):
                runs[name].append(side(name, base))
        if args.sd15:
            presets = {key: side("ours", base, key) for key in ("atlas-000", "gazetteer-001")}

    def median(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    ref_step = median("reference", "seconds_per_step")
    ours_step = median("ours", "seconds_per_step")
    ref_rss, ours_rss = median("reference", "peak_rss"), median("ours", "peak_rss")
    model = "SD 1.5 architecture (random weights)" if args.sd15 else "tiny SD model"
    print(
        f"{model}, {args.size} px, batch {args.batch}, {args.steps} steps, "
        f"{args.threads} torch thread(s), {args.rounds} alternating rounds (medians)"
    )
    print(
        f"reference (VAE + text encoder every step): {ref_step:.4f} s/step, "
        f"peak RSS {ref_rss / 2**20:.0f} MiB"
    )
    print(
        f"train_lora (cached latents + embeddings):  {ours_step:.4f} s/step, "
        f"peak RSS {ours_rss / 2**20:.0f} MiB "
        f"(whole call incl. load, caching, save: {median('ours', 'seconds_total'):.2f} s)"
    )
    per_round = [
        o["seconds_per_step"] / r["seconds_per_step"]
        for r, o in zip(runs["reference"], runs["ours"], strict=True)
    ]
    print(
        f"ratio ours/reference: {ours_step / ref_step:.2f} (s/step), "
        f"{ours_rss / ref_rss:.2f} (peak RSS); per round: "
        + ", ".join(f"{x:.2f}" for x in per_round)
    )
    for key, result in presets.items():
        print(
            f"train_lora with {key}'s LoRA settings: {result['seconds_per_step']:.2f} s/step, "
            f"peak RSS {result['peak_rss'] / 2**30:.2f} GiB "
            f"(whole call {result['seconds_total']:.1f} s)"
        )


def build_sd15(folder: Path) -> None:
    """SD 1.5's components from its configs, random weights, saved as an fp16 diffusers
    folder (the loader upcasts to fp32); one component at a time keeps the peak low."""
    import torch
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    from generation.diffusion import pipeline as sd
    from generation.diffusion.tokenizer import load_tokenizer

    torch.manual_seed(0)
    StableDiffusionPipeline(
        unet=UNet2DConditionModel(**sd.SD15_UNET_CONFIG).half(),
        vae=AutoencoderKL(**sd.SD15_VAE_CONFIG).half(),
        text_encoder=CLIPTextModel(CLIPTextConfig(**sd.SD15_TEXT_ENCODER_CONFIG)).half(),
        tokenizer=load_tokenizer(sd.TOKENIZER_DIR),
        scheduler=DDIMScheduler.from_config(sd.SD15_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    ).save_pretrained(folder, safe_serialization=True)


if __name__ == "__main__":
    main()
