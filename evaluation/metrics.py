"""Automated image metrics: MSE, PSNR, SSIM and a memorisation check. Plain numpy, no Django.

SSIM follows scikit-image's ``structural_similarity(a, b, channel_axis=-1, data_range=255)``
exactly (7x7 uniform window, sample covariance, K1=0.01, K2=0.03, mean over the interior that
skimage keeps after cropping ``(win_size - 1) // 2`` pixels, averaged over channels), or its
``gaussian_weights=True`` variant (sigma 1.5, truncate 3.5, 11 taps).

Why it is faster than calling skimage once per pair: SSIM is memory-bound (a dozen full-size
float64 temporaries per channel). We compute it in row strips with a halo, so the temporaries
stay in cache, with four filters instead of five and in-place arithmetic; the same scipy
filters as skimage, so the values match it to ~1e-15 (tests check 1e-6). The memorisation check
computes each image's window statistics once and only the cross term per pair.

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
K1, K2 = 0.01, 0.03
UNIFORM_WIN = 7
GAUSS_SIGMA, GAUSS_TRUNCATE = 1.5, 3.5


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


def _box_sum_valid(x: np.ndarray, w: int) -> np.ndarray:
    """Sum over every w x w window fully inside the image, for x shaped (N, H, W, C)."""
    n, h, wd, c = x.shape
    cs = np.zeros((n, h + 1, wd, c), dtype=np.float64)
    np.cumsum(x, axis=1, out=cs[:, 1:])
    rows = cs[:, w:] - cs[:, :-w]
    cs2 = np.zeros((n, h - w + 1, wd + 1, c), dtype=np.float64)
    np.cumsum(rows, axis=2, out=cs2[:, :, 1:])
    return cs2[:, :, w:] - cs2[:, :, :-w]


def _ssim_plane(
    x8: np.ndarray,
    y8: np.ndarray,
    *,
    gaussian: bool,
    data_range: float,
    sample_cov: bool,
    strip: int = 64,
) -> float:
    """Mean SSIM of one channel plane over skimage's interior, computed in row strips.

    Each strip carries a halo of ``win - 1`` rows, so every kept window is whole; the strip's
    dozen temporaries stay in the CPU cache, which is where the speed comes from (the work is
    memory-bound). Only four filters are needed: x, y, x*x + y*y and x*y.
    """
    from scipy.ndimage import gaussian_filter, uniform_filter

    if gaussian:
        win = 2 * int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5) + 1

        def filt(v: np.ndarray) -> np.ndarray:
            return gaussian_filter(v, GAUSS_SIGMA, truncate=GAUSS_TRUNCATE, mode="reflect")

    else:
        win = UNIFORM_WIN

        def filt(v: np.ndarray) -> np.ndarray:
            return uniform_filter(v, size=win, mode="reflect")

    pad = (win - 1) // 2
    height, width = x8.shape
    n_points = win * win
    cov_norm = n_points / (n_points - 1) if sample_cov else 1.0
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    total = 0.0
    valid_rows = height - 2 * pad
    for r0 in range(0, valid_rows, strip):
        r1 = min(r0 + strip, valid_rows)
        x = x8[r0 : r1 + win - 1].astype(np.float64)
        y = y8[r0 : r1 + win - 1].astype(np.float64)
        keep = (slice(pad, -pad), slice(pad, -pad))
        ux = filt(x)[keep]
        uy = filt(y)[keep]
        sq = x * x
        sq += y * y
        sq = filt(sq)[keep]  # E[x^2] + E[y^2]
        x *= y
        sxy = filt(x)[keep]  # E[xy]
        uxuy = ux * uy
        ux *= ux
        uy *= uy
        ux += uy  # ux^2 + uy^2
        sq -= ux
        sq *= cov_norm
        sq += c2  # vx + vy + C2
        sxy -= uxuy
        sxy *= 2 * cov_norm
        sxy += c2  # 2 vxy + C2
        uxuy *= 2
        uxuy += c1  # 2 ux uy + C1
        ux += c1  # ux^2 + uy^2 + C1
        uxuy *= sxy
        ux *= sq
        uxuy /= ux
        total += float(uxuy.sum())
    return total / (valid_rows * (width - 2 * pad))


def ssim_batch(
    a: np.ndarray,
    b: np.ndarray,
    *,
    gaussian_weights: bool = False,
    data_range: float = DATA_RANGE,
    use_sample_covariance: bool | None = None,
) -> np.ndarray:
    """SSIM per pair of (N, H, W, C) (or (H, W, C)) images, equal to skimage's per pair.

    ``use_sample_covariance`` defaults to skimage's default (True). Pass False with
    ``gaussian_weights=True`` for Wang et al. (2004)'s original definition.
    """
    a, b = _check_pairs(a, b)
    sample_cov = True if use_sample_covariance is None else use_sample_covariance
    win = 2 * int(GAUSS_TRUNCATE * GAUSS_SIGMA + 0.5) + 1 if gaussian_weights else UNIFORM_WIN
    if min(a.shape[1], a.shape[2]) < win:
        raise ValueError(f"images must be at least {win}x{win} pixels for SSIM")
    out = np.empty(a.shape[0], dtype=np.float64)
    for i in range(a.shape[0]):
        planes = [
            _ssim_plane(
                np.ascontiguousarray(a[i, ..., c]),
                np.ascontiguousarray(b[i, ..., c]),
                gaussian=gaussian_weights,
                data_range=data_range,
                sample_cov=sample_cov,
            )
            for c in range(a.shape[-1])
        ]
        out[i] = float(np.mean(planes))  # mean over channels, as skimage does
    return out


def pair_metrics(a: np.ndarray, b: np.ndarray) -> list[PairMetrics]:
    """MSE, PSNR and SSIM for each pair of (N, H, W, 3) uint8 images."""
    a, b = _check_pairs(a, b)
    mses = mse_batch(a, b)
    ssims = ssim_batch(a, b)
    return [
        PairMetrics(mse=float(m), psnr=psnr_from_mse(float(m)), ssim=float(s), identical=m == 0)
        for m, s in zip(mses, ssims, strict=True)
    ]


def skimage_pair_metrics(a: np.ndarray, b: np.ndarray) -> PairMetrics:
    """The reference implementation (one pair): scikit-image's own functions."""
    from skimage.metrics import mean_squared_error, structural_similarity

    mse = float(mean_squared_error(a, b))
    psnr = psnr_from_mse(mse)  # skimage's PSNR would be inf (with a warning) for mse == 0
    ssim = float(structural_similarity(a, b, channel_axis=-1, data_range=DATA_RANGE))
    return PairMetrics(mse=mse, psnr=psnr, ssim=ssim, identical=mse == 0)


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

    Similarity is SSIM (skimage's 7x7 uniform window) between grey thumbnails; the per-image
    window means and variances are computed once, so each of the G x T pairs costs only the
    cross term. A near copy is SSIM >= ``ssim_threshold`` or a dHash distance <=
    ``hash_threshold`` (when hashes are given) to the nearest image.
    Returns None for each generated image when there are no training images.
    """
    if not training:
        return [None] * len(generated)
    t = np.stack(training).astype(np.float64)[..., None]  # (T, H, W, 1)
    w = UNIFORM_WIN
    area = float(w * w)
    cov_norm = area / (area - 1)
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    ut = _box_sum_valid(t, w) / area
    vt = cov_norm * (_box_sum_valid(t * t, w) / area - ut * ut)
    results: list[NearestMatch | None] = []
    for gi, g in enumerate(generated):
        x = np.asarray(g, dtype=np.float64)[None, ..., None]
        ux = _box_sum_valid(x, w) / area
        vx = cov_norm * (_box_sum_valid(x * x, w) / area - ux * ux)
        vxy = cov_norm * (_box_sum_valid(t * x, w) / area - ux * ut)
        s = ((2 * ux * ut + c1) * (2 * vxy + c2)) / ((ux * ux + ut * ut + c1) * (vx + vt + c2))
        scores = s.mean(axis=(1, 2, 3))
        best = int(np.argmax(scores))
        dist: int | None = None
        if generated_hashes is not None and training_hashes is not None:
            dist = hamming(generated_hashes[gi], training_hashes[best])
        near = bool(scores[best] >= ssim_threshold or (dist is not None and dist <= hash_threshold))
        results.append(
            NearestMatch(index=best, ssim=float(scores[best]), hash_distance=dist, near_copy=near)
        )
    return results
