"""Metric throughput (pairs/s at 512 px): evaluation.metrics vs scikit-image's per-pair loop.

Same random 512x512 RGB uint8 pairs for both; the two sides alternate for ``--rounds`` rounds
and the medians are compared (one round swings by a third on a shared machine); checks the
values agree (max |delta SSIM|, |delta MSE|). evaluation.metrics calls scikit-image's SSIM, so
the ratio shows what its batching and exact MSE add or cost.

    python bench/bench_metrics.py [--pairs 16] [--size 512] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evaluation import metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from skimage.metrics import mean_squared_error, structural_similarity

    rng = np.random.default_rng(0)
    shape = (args.pairs, args.size, args.size, 3)
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-40, 41, shape), 0, 255).astype(np.uint8)

    ref_times, our_times = [], []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        ref_ssim, ref_mse = [], []
        for i in range(args.pairs):
            ref_mse.append(mean_squared_error(a[i], b[i]))
            ref_ssim.append(structural_similarity(a[i], b[i], channel_axis=-1, data_range=255))
        ref_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = metrics.pair_metrics(a, b)
        our_times.append(time.perf_counter() - t0)
    t_ref, t_ours = statistics.median(ref_times), statistics.median(our_times)

    d_ssim = max(abs(o.ssim - r) for o, r in zip(ours, ref_ssim, strict=True))
    d_mse = max(abs(o.mse - r) for o, r in zip(ours, ref_mse, strict=True))
    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, numpy {np.__version__}")
    print(f"pairs: {args.pairs} at {args.size}x{args.size} RGB (MSE + PSNR + SSIM)")
    print(f"rounds (s): skimage {[round(t, 2) for t in ref_times]}")
    print(f"            ours    {[round(t, 2) for t in our_times]}")
    print(f"scikit-image per-pair loop: {args.pairs / t_ref:7.2f} pairs/s (median {t_ref:.2f} s)")
    print(f"evaluation.metrics:        {args.pairs / t_ours:7.2f} pairs/s (median {t_ours:.2f} s)")
    print(f"ratio (skimage time / ours): {t_ref / t_ours:.2f}x")
    print(f"max |dSSIM| {d_ssim:.2e}; max |dMSE| {d_mse:.2e}")


if __name__ == "__main__":
    main()
