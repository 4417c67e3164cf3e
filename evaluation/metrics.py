"""Automated image metrics: MSE, PSNR, SSIM and a memorisation check (no Django).

SSIM is scikit-image's ``structural_similarity(a, b, channel_axis=-1, data_range=255)`` (7x7
uniform window, sample covariance), called once per pair; the memorisation check calls it on
grey thumbnails. A hand-written strip-wise SSIM was 1.32x faster here (docs/benchmarks.md), not
enough to keep a second implementation of a published metric. MSE stays an exact numpy dot.

PSNR of identical images is infinite. We never return ``inf``: a pair whose MSE is 0 gets
``psnr=None`` and ``identical=True``; :func:`summarise` averages PSNR over the non-identical
pairs and reports how many identical pairs it left out (no log of zero, so no warning).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

DATA_RANGE = 255.0
UNIFORM_WIN = 7  # skimage's default window
GAUSS_WIN = 11  # skimage's gaussian_weights window (sigma 1.5, truncate 3.5)


@dataclass(frozen=True)
class PairMetrics:
    mse: float
    psnr: float | None  # None when the images are identical (MSE 0): PSNR would be infinite
    ssim: float
    identical: bool

    def as_dict(self) -> dict:
        return asdict(self)


# --- image preparation --------------------------------------------------------------------


def as_rgb_array(image, size: tuple[int, int] | None = None) -> np.ndarray:
    """A PIL image (or array) as an (H, W, 3) uint8 array, resized to ``size`` (w, h) if given.

    Resizing uses a centre crop to the target aspect ratio then a Lanczos resample, so a
    reference photo and a square generated image are compared on the same framing.
    """
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    if size is not None and image.size != tuple(size):
        image = ImageOps.fit(image, tuple(size), method=Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _check_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 3:  # one pair (H, W, C)
        a, b = a[None], b[None]
    if a.ndim != 4:
        raise ValueError("expected (H, W, C) or (N, H, W, C) arrays")
    return a, b


# --- MSE / PSNR -----------------------------------------------------------------------------


def mse_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Mean squared error per pair of (N, H, W, C) images; exact integer sums for uint8."""
    a, b = _check_pairs(a, b)
    n = a.shape[0]
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        if a.dtype == np.uint8 and b.dtype == np.uint8:
            # int16 difference, float64 dot: every partial sum is an integer below 2**53, so
            # the sum of squares is exact and BLAS does it.
            d = np.subtract(a[i], b[i], dtype=np.int16).ravel().astype(np.float64)
        else:
            d = (a[i].astype(np.float64) - b[i].astype(np.float64)).ravel()
        out[i] = float(np.dot(d, d)) / d.size
    return out


def psnr_from_mse(mse: float, data_range: float = DATA_RANGE) -> float | None:
    """PSNR in dB, or None for identical images (MSE 0) instead of an infinite value."""
    if mse <= 0.0:
        return None
    return 10.0 * math.log10(data_range * data_range / mse)


# --- SSIM -----------------------------------------------------------------------------------


def ssim_batch(
    a: np.ndarray,
    b: np.ndarray,
    *,
    gaussian_weights: bool = False,
    data_range: float = DATA_RANGE,
    use_sample_covariance: bool | None = None,
) -> np.ndarray:
    """SSIM per pair of (N, H, W, C) (or (H, W, C)) images: skimage's, averaged over channels.

    ``use_sample_covariance`` defaults to skimage's default (True). Pass False with
    ``gaussian_weights=True`` for Wang et al. (2004)'s original definition.
    """
    from skimage.metrics import structural_similarity

    a, b = _check_pairs(a, b)
    win = GAUSS_WIN if gaussian_weights else UNIFORM_WIN
    if min(a.shape[1], a.shape[2]) < win:
        raise ValueError(f"images must be at least {win}x{win} pixels for SSIM")
    return np.array(
        [
            structural_similarity(
                a[i],
                b[i],
                channel_axis=-1,
                data_range=data_range,
                gaussian_weights=gaussian_weights,
                use_sample_covariance=(
                    True if use_sample_covariance is None else use_sample_covariance
                ),
            )
            for i in range(a.shape[0])
        ],
        dtype=np.float64,
    )


def pair_metrics(a: np.ndarray, b: np.ndarray) -> list[PairMetrics]:
    """MSE, PSNR and SSIM for each pair of (N, H, W, 3) uint8 images."""
    a, b = _check_pairs(a, b)
    mses = mse_batch(a, b)
    ssims = ssim_batch(a, b)
    return [
        PairMetrics(mse=float(m), psnr=psnr_from_mse(float(m)), ssim=float(s), identical=m == 0)
        for m, s in zip(mses, ssims, strict=True)
    ]


@dataclass(frozen=True)
class MetricSummary:
    n_pairs: int
    mse_mean: float | None
    mse_sd: float | None
    psnr_mean: float | None  # over non-identical pairs only
    psnr_sd: float | None
    ssim_mean: float | None
    ssim_sd: float | None
    n_identical: int  # pairs left out of the PSNR mean because PSNR is infinite


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    sd = float(arr.std(ddof=1)) if arr.size > 1 else None
    return float(arr.mean()), sd


def summarise(pairs: Iterable[PairMetrics]) -> MetricSummary:
    pairs = list(pairs)
    mse = _mean_sd([p.mse for p in pairs])
    psnr = _mean_sd([p.psnr for p in pairs if p.psnr is not None])
    ssim = _mean_sd([p.ssim for p in pairs])
    return MetricSummary(
        n_pairs=len(pairs),
        mse_mean=mse[0],
        mse_sd=mse[1],
        psnr_mean=psnr[0],
        psnr_sd=psnr[1],
        ssim_mean=ssim[0],
        ssim_sd=ssim[1],
        n_identical=int(sum(bool(p.identical) for p in pairs)),
    )


# --- reference rows -------------------------------------------------------------------------

MAX_REFERENCE_OTHERS = 24  # a study's training images scored against every reference (sampled)


def flat_like(original: np.ndarray) -> np.ndarray:
    """A featureless image of ``original``'s own mean colour, same shape (uint8)."""
    mean = original.reshape(-1, original.shape[-1]).mean(axis=0).round()
    return np.broadcast_to(mean, original.shape).astype(np.uint8)


def reference_summaries(
    originals: Sequence[np.ndarray], others: Sequence[np.ndarray]
) -> dict[str, MetricSummary]:
    """What images no model drew score against the originals, for reading a model's figures.

    ``others`` (when given): every one of ``others`` (e.g. the training images: the style itself, in
    other layouts) against every original. ``flat``: each original's mean colour, flat.
    Per-image metrics against one original reward the right colour in the right place; these
    two rows show how much of a score needs no style at all (docs/demo-experiment.md).
    """
    if not originals:
        raise ValueError("reference rows need at least one original")
    flats = np.stack([flat_like(o) for o in originals])
    rows = {"flat": summarise(pair_metrics(flats, np.stack(list(originals))))}
    if others:  # e.g. a study of base images only has no training images
        pairs_a = np.stack([o for _ in originals for o in others])
        pairs_b = np.stack([orig for orig in originals for _ in others])
        rows = {"others": summarise(pair_metrics(pairs_a, pairs_b)), **rows}
    return rows


# --- memorisation check ---------------------------------------------------------------------

MEMO_SIZE = 64  # compare grey 64x64 thumbnails: framing and layout, not fine texture
NEAR_COPY_SSIM = 0.80
NEAR_COPY_HASH = 4  # of 64 bits


def grey_thumbnail(image, size: int = MEMO_SIZE) -> np.ndarray:
    """A PIL image (or RGB array) as a (size, size) float64 grey array, centre-cropped."""
    from PIL import Image, ImageOps

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    grey = ImageOps.fit(image.convert("L"), (size, size), method=Image.Resampling.BOX)
    return np.asarray(grey, dtype=np.float64)


def dhash(image) -> int:
    """64-bit difference hash (row gradients of a 9x8 grey thumbnail)."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    small = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.LANCZOS), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass(frozen=True)
class NearestMatch:
    index: int  # position in the training list
    ssim: float  # grey 64x64 SSIM with that training image
    hash_distance: int | None  # dHash Hamming distance to that image (0-64), if hashed
    near_copy: bool


def nearest_training(
    generated: Sequence[np.ndarray],
    training: Sequence[np.ndarray],
    *,
    generated_hashes: Sequence[int] | None = None,
    training_hashes: Sequence[int] | None = None,
    ssim_threshold: float = NEAR_COPY_SSIM,
    hash_threshold: int = NEAR_COPY_HASH,
) -> list[NearestMatch | None]:
    """For each generated grey thumbnail, the most similar training thumbnail.

    Similarity is skimage's SSIM (7x7 uniform window) between grey thumbnails. A near copy is
    SSIM >= ``ssim_threshold`` or a dHash distance <= ``hash_threshold`` (when hashes are given)
    to the nearest image. Returns None for each generated image when there are no training images.
    """
    from skimage.metrics import structural_similarity

    if not training:
        return [None] * len(generated)
    results: list[NearestMatch | None] = []
    for gi, g in enumerate(generated):
        scores = [structural_similarity(g, t, data_range=DATA_RANGE) for t in training]
        best = int(np.argmax(scores))
        dist: int | None = None
        if generated_hashes is not None and training_hashes is not None:
            dist = hamming(generated_hashes[gi], training_hashes[best])
        near = bool(scores[best] >= ssim_threshold or (dist is not None and dist <= hash_threshold))
        results.append(
            NearestMatch(index=best, ssim=float(scores[best]), hash_distance=dist, near_copy=near)
        )
    return results
