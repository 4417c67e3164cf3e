"""Seconds per training step with aspect-ratio buckets against centred squares (the same run
otherwise): the same images (hanging scrolls 1:4 and 1:2, squares, handscrolls 2:1, 4:1 and
5:1), captions, LoRA, batch and number of steps; only ``bucketing`` differs. The sides
alternate for ``--rounds`` rounds and the medians are compared. Also prints the buckets used,
the steps an epoch takes (a bucket's last batch may be short) and seconds per epoch.

    python bench/bench_buckets.py --steps 24 --rounds 3 --threads 1

On the demo model (64 px, trained VAE) by default; ``--sd15`` builds SD 1.5's real
architecture from its configs (random weights, nothing downloaded) and runs the same
comparison at ``--size`` px (64 px bucket steps, as SD needs):

    python bench/bench_buckets.py --sd15 --size 128 --steps 3 --rounds 1 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RATIOS = (0.25, 0.5, 1.0, 1.0, 2.0, 4.0, 5.0, 0.25)  # width / height of the 8 images


def examples(size: int) -> list:
    """Eight textured images whose long side is 3x the training size."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for index, ratio in enumerate(RATIOS):
        long_side = 3 * size
        width, height = (
            (long_side, round(long_side / ratio))
            if ratio >= 1
            else (round(long_side * ratio), long_side)
        )
        base = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(base).resize((width, height), Image.Resampling.BICUBIC)
        out.append((image, f"silk pattern {index}"))
    return out


def run(base: Path, config, images) -> dict:
    from generation.diffusion.train import _epoch_batches, load_example, train_lora

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = train_lora(config, images, base_model=base, output_dir=out, resume=False)
        total = time.perf_counter() - started
    buckets = config.buckets()
    loaded = [load_example(ex, config, buckets, name=str(i)) for i, ex in enumerate(images)]
    batches = _epoch_batches([x.choice.bucket for x in loaded], config.train_batch_size, 0, 0)
    return {
        "s_per_step": result.seconds_per_step,
        "steps_per_epoch": len(batches),
        "buckets": result.buckets,
        "total_s": total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sd15", action="store_true", help="SD 1.5's architecture, random")
    parser.add_argument("--size", type=int, default=0, help="training size (default: model's)")
    args = parser.parse_args()

    import torch

    from generation.diffusion.config import LoraTrainingConfig

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.sd15:
            from bench.bench_training import build_sd15

            base = Path(tmp) / "sd15"
            started = time.perf_counter()
            build_sd15(base)
            print(f"built SD 1.5 architecture in {time.perf_counter() - started:.0f} s")
            size, step, model = args.size or 128, 64, "SD 1.5 architecture (random weights)"
        else:
            base = ROOT / "demo" / "model"
            size, step, model = args.size or 64, 16, "demo model"
        settings = {
            "resolution": size,
            "bucket_step": step,
            "train_batch_size": args.batch,
            "max_steps": args.steps,
            "rank": 4,
            "alpha": 4.0,
            "sample_latents": False,
            "validation_prompts": (),
        }
        images = examples(size)
        sides = {
            "square": LoraTrainingConfig(**settings, bucketing=False),
            "buckets": LoraTrainingConfig(**settings, bucketing=True),
        }
        results: dict[str, list[dict]] = {name: [] for name in sides}
        for _ in range(args.rounds):
            for name, config in sides.items():
                results[name].append(run(base, config, images))
                print(name, results[name][-1], flush=True)

    print(
        f"\n{model}, {size} px, batch {args.batch}, {args.steps} steps, {args.rounds} round(s), "
        f"{args.threads} thread(s)"
    )
    print("| side | buckets | steps/epoch | s/step (median) | s/epoch |")
    print("|---|---|---|---|---|")
    medians = {}
    for name, rows in results.items():
        per_step = statistics.median(r["s_per_step"] for r in rows)
        medians[name] = per_step
        buckets = ", ".join(f"{k} ({v})" for k, v in rows[0]["buckets"].items())
        per_epoch = per_step * rows[0]["steps_per_epoch"]
        print(
            f"| {name} | {buckets} | {rows[0]['steps_per_epoch']} | {per_step:.4f} | "
            f"{per_epoch:.3f} |"
        )
    print(f"\nratio buckets/square per step: {medians['buckets'] / medians['square']:.2f}")


if __name__ == "__main__":
    main()
