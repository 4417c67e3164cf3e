"""Seconds per image of the shipped demo base model at the papers' settings (DDIM 35, CFG 7).

Baseline, measured in the same run: the same pipeline at 1 DDIM step (loading, text encoding,
VAE decoding: the fixed cost), so the ratio shows what the 35 denoising steps cost on top.

    python bench/bench_demo_inference.py [--repeats 5] [--threads N] [--model DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    parser.add_argument(
        "--model", type=Path, default=None, help="pipeline folder (default: demo/model)"
    )
    args = parser.parse_args()

    import torch
    from diffusers import StableDiffusionPipeline

    from demo.model_recipe import DEFAULT_OUT_DIR

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model = args.model or DEFAULT_OUT_DIR
    pipe = StableDiffusionPipeline.from_pretrained(str(model), local_files_only=True)
    load_s = time.perf_counter() - t0
    pipe.set_progress_bar_config(disable=True)
    prompt = "a red circle and a blue square on a yellow background"

    def seconds(steps: int) -> float:
        times = []
        for seed in range(args.repeats):
            gen = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            pipe(prompt, num_inference_steps=steps, guidance_scale=7.0, generator=gen)
            times.append(time.perf_counter() - start)
        return statistics.median(times)

    seconds(1)  # warm-up
    base = seconds(1)
    full = seconds(35)
    h = pipe.unet.config.sample_size * pipe.vae_scale_factor
    print(f"torch threads: {torch.get_num_threads()}; image {h}x{h} px; load {load_s:.2f} s")
    print(f"baseline (1 DDIM step, CFG 7): {base:.3f} s/image (median of {args.repeats})")
    print(f"35 DDIM steps, CFG 7:          {full:.3f} s/image (median of {args.repeats})")
    print(
        f"ratio 35-step / 1-step: {full / base:.1f}x; "
        f"per denoising step {(full - base) / 34 * 1000:.1f} ms"
    )
    print("target <= 2 s/image:", "met" if full <= 2.0 else "NOT met")


if __name__ == "__main__":
    main()
