"""Distribution comparisons of a generated image set with a reference set, without a pretrained
network (plain numpy, no Django).

* Multi-scale sliced Wasserstein distance (SWD) over local image patches, as in Karras et al.,
  "Progressive Growing of GANs" (ICLR 2018, appendix D and their ``sliced_wasserstein.py``):
  a Laplacian pyramid of each image, 7x7 patches sampled per level, each patch normalised by
  the per-channel mean and SD of its level over both sets, then the mean over random unit
  directions of the 1-D Wasserstein distance between the projected patch sets. Reported x 1e3
  per level (16 px and up) and averaged, as the paper's tables do. Smaller is closer.
* A colour-distribution distance: per RGB channel the 1-D Wasserstein (earth mover's) distance
  between the two sets' pixel-value histograms (32 bins on 0-255), averaged over channels, in
  grey levels. 0 means the same colour distribution.

Both read a *set*, not pairs: they ask whether the generated images look drawn from the same
distribution as the references, whatever their layout. With a handful of images they are
noisy; the sizes are reported beside them.

KID and CLIP score need a feature extractor's weights; ``feature_slot`` reports whether the
operator configured some on disk (``EVALUATION_FEATURE_WEIGHTS``) and runs a registered
extractor when one is there.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PATCH = 7  # the paper's descriptor: 7x7 neighbourhoods
PATCHES_PER_IMAGE = 128
DIRECTIONS = 4  # random projections per repeat
REPEATS = 128  # as in the paper's reference code: 4 x 128 = 512 directions
MIN_LEVEL = 16  # coarsest pyramid level, in pixels
HIST_BINS = 32


def _blur_down(image: np.ndarray) -> np.ndarray:
    """Gaussian 5-tap (1 4 6 4 1)/16 blur then 2x decimation (one pyramid step)."""
    k = np.array([1, 4, 6, 4, 1], dtype=np.float64) / 16
    pad = np.pad(image, ((2, 2), (2, 2), (0, 0)), mode="reflect")
    h = sum(k[i] * pad[:, i : i + image.shape[1]] for i in range(5))
    v = sum(k[i] * h[i : i + image.shape[0]] for i in range(5))
    return v[::2, ::2]


def _up(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    up = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)[: shape[0], : shape[1]]
    return up


def laplacian_pyramid(image: np.ndarray, min_size: int = MIN_LEVEL) -> list[np.ndarray]:
    """Finest level first; the last level is the low-pass residual (at least ``min_size``)."""
    levels = []
    current = image.astype(np.float64)
    while min(current.shape[:2]) // 2 >= min_size:
        down = _blur_down(current)
        levels.append(current - _up(down, current.shape[:2]))
        current = down
    levels.append(current)
    return levels


def _patches(level: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    h, w, c = level.shape
    if h < PATCH or w < PATCH:
        return np.empty((0, PATCH * PATCH * c))
    ys = rng.integers(0, h - PATCH + 1, n)
    xs = rng.integers(0, w - PATCH + 1, n)
    return np.stack(
        [level[y : y + PATCH, x : x + PATCH].reshape(-1) for y, x in zip(ys, xs, strict=True)]
    )


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Mean 1-D Wasserstein distance between two equal-size point sets over random directions."""
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    total = 0.0
    for _ in range(REPEATS):
        directions = rng.standard_normal((a.shape[1], DIRECTIONS))
        directions /= np.linalg.norm(directions, axis=0, keepdims=True)
        pa = np.sort(a @ directions, axis=0)
        pb = np.sort(b @ directions, axis=0)
        total += float(np.abs(pa - pb).mean())
    return total / REPEATS


def _level_descriptors(
    images: Sequence[np.ndarray], rng: np.random.Generator
) -> list[list[np.ndarray]]:
    per_level: list[list[np.ndarray]] = []
    for image in images:
        for i, level in enumerate(laplacian_pyramid(image)):
            if len(per_level) <= i:
                per_level.append([])
            per_level[i].append(_patches(level, PATCHES_PER_IMAGE, rng))
    return per_level


def swd(
    generated: Sequence[np.ndarray], references: Sequence[np.ndarray], seed: int = 0
) -> dict[str, Any]:
    """Multi-scale SWD (x 1e3) per level (finest first, named by its size) and their mean.

    All images must have the same size (the caller resizes); uint8 RGB arrays.
    """
    if not generated or not references:
        raise ValueError("both sets need at least one image")
    shapes = {im.shape for im in [*generated, *references]}
    if len(shapes) != 1:
        raise ValueError(f"images differ in size: {sorted(shapes)}")
    rng = np.random.default_rng(seed)
    ga = _level_descriptors(generated, rng)
    ra = _level_descriptors(references, rng)
    size = min(generated[0].shape[:2])
    levels: dict[str, float] = {}
    for i, (g, r) in enumerate(zip(ga, ra, strict=True)):
        g_all, r_all = np.concatenate(g), np.concatenate(r)
        if not len(g_all) or not len(r_all):
            continue
        # Normalise each channel by the level's mean and SD over both sets (the paper's step).
        both = np.concatenate([g_all, r_all]).reshape(-1, PATCH * PATCH, 3)
        mean, sd = both.mean(axis=(0, 1)), both.std(axis=(0, 1)) + 1e-8
        g_n = ((g_all.reshape(-1, PATCH * PATCH, 3) - mean) / sd).reshape(len(g_all), -1)
        r_n = ((r_all.reshape(-1, PATCH * PATCH, 3) - mean) / sd).reshape(len(r_all), -1)
        # Equal-size sets: resample the smaller with replacement.
        n = max(len(g_n), len(r_n))
        g_n = g_n[rng.integers(0, len(g_n), n)] if len(g_n) < n else g_n
        r_n = r_n[rng.integers(0, len(r_n), n)] if len(r_n) < n else r_n
        levels[f"{size >> i}px"] = 1e3 * sliced_wasserstein(g_n, r_n, rng)
    return {"levels": levels, "mean": float(np.mean(list(levels.values()))) if levels else None}


def colour_histogram_distance(
    generated: Sequence[np.ndarray], references: Sequence[np.ndarray], bins: int = HIST_BINS
) -> float:
    """Mean over R, G, B of the earth mover's distance between the sets' value histograms, in
    grey levels (0-255). Size-independent: each image weighs the same."""
    if not generated or not references:
        raise ValueError("both sets need at least one image")
    edges = np.linspace(0, 256, bins + 1)
    width = 256 / bins

    def histogram(images: Sequence[np.ndarray], channel: int) -> np.ndarray:
        h = np.zeros(bins)
        for im in images:
            counts, _ = np.histogram(im[..., channel], bins=edges)
            h += counts / counts.sum()
        return h / h.sum()

    distances = []
    for channel in range(3):
        cdf_g = np.cumsum(histogram(generated, channel))
        cdf_r = np.cumsum(histogram(references, channel))
        distances.append(float(np.abs(cdf_g - cdf_r).sum() * width))
    return float(np.mean(distances))


# --- the KID / CLIP-score slot -------------------------------------------------------------

# name -> callable(weights_path, generated, references) -> {metric: value}. Empty here: an
# operator who installs an extractor registers it (nothing is downloaded, nothing bundled).
FEATURE_EXTRACTORS: dict[
    str, Callable[[Path, Sequence[np.ndarray], Sequence[np.ndarray]], dict]
] = {}


@dataclass(frozen=True)
class FeatureSlot:
    status: str  # "not configured" | "weights missing" | "no extractor" | "computed" | "failed"
    detail: str
    values: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def feature_slot(
    weights: str | None,
    generated: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    extractor: str = "",
) -> FeatureSlot:
    """KID / CLIP score when the operator provides feature-extractor weights on disk."""
    if not weights:
        return FeatureSlot(
            "not configured",
            "KID / CLIP score need feature-extractor weights on disk "
            "(EVALUATION_FEATURE_WEIGHTS); none configured.",
        )
    path = Path(weights)
    if not path.exists():
        return FeatureSlot("weights missing", f"EVALUATION_FEATURE_WEIGHTS={weights} not found.")
    run = FEATURE_EXTRACTORS.get(extractor)
    if run is None:
        return FeatureSlot(
            "no extractor",
            f"weights at {weights}, but no extractor {extractor!r} is registered "
            f"(registered: {', '.join(sorted(FEATURE_EXTRACTORS)) or 'none'}).",
        )
    try:
        values = run(path, generated, references)
    except Exception as exc:  # an operator's extractor must not fail the metrics job
        return FeatureSlot("failed", f"{extractor}: {exc}")
    return FeatureSlot("computed", f"{extractor} on {weights}", dict(values))


def compare_sets(
    generated: Sequence[np.ndarray],
    references: Sequence[np.ndarray],
    *,
    seed: int = 0,
    weights: str | None = None,
    extractor: str = "",
) -> dict[str, Any]:
    """The distribution protocol for one run and condition: SWD, colour distance, slot."""
    s = swd(generated, references, seed=seed)
    return {
        "n_generated": len(generated),
        "n_references": len(references),
        "swd_x1e3": s["mean"],
        "swd_levels_x1e3": s["levels"],
        "colour_emd": colour_histogram_distance(generated, references),
        "features": feature_slot(weights, generated, references, extractor).as_dict(),
    }
