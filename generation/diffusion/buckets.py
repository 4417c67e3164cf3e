"""Aspect-ratio buckets: train on whole scrolls and handscrolls instead of their middle square.

kohya's scheme (sd-scripts ``BucketManager.make_buckets``): for every width from the smallest
to the largest side, in steps of ``step`` pixels, the tallest height (same step) whose area
stays within ``resolution**2``; the transposes; and the square. Each image goes to the bucket
whose aspect ratio is nearest its own (on a log scale, so 1:4 and 4:1 are equally far from
1:1), is resized to cover it and centre-cropped by the little that is left over.

Plain Python and Pillow only (no torch, no Django): the dataset page, the freeze job and the
training loop all call the same functions, so the page shows the crop training will use.

Refusals name the image: smaller than the smallest bucket side, or so long that even the most
extreme bucket would cut away more than 1 - ``MIN_KEPT`` of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The crop to the nearest bucket must keep at least this fraction of each side of the image.
MIN_KEPT = 0.8


@dataclass(frozen=True)
class Bucket:
    width: int
    height: int

    @property
    def ratio(self) -> float:
        return self.width / self.height

    @property
    def area(self) -> int:
        return self.width * self.height

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}"

    def __str__(self) -> str:
        return self.label


@dataclass(frozen=True)
class BucketChoice:
    """Where an image of ``size`` goes: its bucket and the crop box in the image's pixels
    (left, top, width, height) that is resized to exactly the bucket."""

    size: tuple[int, int]
    bucket: Bucket
    crop: tuple[float, float, float, float]

    @property
    def kept(self) -> float:
        """The fraction of the image's area inside the crop (1.0: the whole picture)."""
        return (self.crop[2] * self.crop[3]) / (self.size[0] * self.size[1])

    @property
    def kept_sides(self) -> tuple[float, float]:
        return (self.crop[2] / self.size[0], self.crop[3] / self.size[1])


class BucketError(ValueError):
    """An image (or region) that no bucket can take; the message names it."""


def default_step(resolution: int) -> int:
    """64 px (SD's U-Net downsamples latents 3 times: 8 x 8) from 256 px up when the resolution
    allows it; 8 px for the small test and demo models."""
    return 64 if resolution >= 256 and resolution % 64 == 0 else 8


def plan(width: int, height: int, resolution: int, name: str):
    """(bucket, crop, smallest side) at the default buckets of ``resolution``, for the
    catalogue's dataset pages (registered with heritage.bucketing); BucketError names the
    image."""
    buckets = make_buckets(resolution, step=default_step(resolution))
    choice = choose_bucket(width, height, buckets, name=name)
    smallest = min(min(b.width, b.height) for b in buckets)
    return (choice.bucket.width, choice.bucket.height), choice.crop, smallest


def default_side_limits(resolution: int, step: int) -> tuple[int, int]:
    """(smallest, largest) bucket side: a quarter and two and a half times the resolution,
    rounded to the step. At 512 px that allows 1:6.7 to 6.7:1 (kohya's 256..1024: 1:4..4:1),
    because handscrolls are 4:1 to 10:1."""
    low = max(step, (resolution // 4) // step * step)
    high = max(resolution, (resolution * 5 // 2) // step * step)
    return low, high


def make_buckets(
    resolution: int,
    *,
    step: int = 64,
    min_side: int | None = None,
    max_side: int | None = None,
) -> list[Bucket]:
    """kohya's bucket list for ``resolution``: all within ``resolution**2`` pixels, sides
    multiples of ``step`` between ``min_side`` and ``max_side``; sorted by aspect ratio."""
    if step <= 0 or resolution % step:
        raise ValueError(f"resolution {resolution} must be a multiple of the bucket step {step}.")
    default_low, default_high = default_side_limits(resolution, step)
    low = default_low if min_side is None else min_side
    high = default_high if max_side is None else max_side
    if low % step or high % step or not low <= resolution <= high:
        raise ValueError(
            f"bucket sides must be multiples of {step} with min {low} <= resolution "
            f"{resolution} <= max {high}."
        )
    max_area = resolution * resolution
    found = {Bucket(resolution, resolution)}
    for width in range(low, high + 1, step):
        height = min(high, (max_area // width) // step * step)
        if height >= low:
            found.add(Bucket(width, height))
            found.add(Bucket(height, width))
    return sorted(found, key=lambda b: (b.ratio, b.area))


def nearest_bucket(width: int, height: int, buckets: Sequence[Bucket]) -> Bucket:
    """The bucket nearest the image's aspect ratio (log scale); ties go to the larger area."""
    ratio = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b.ratio) - ratio), -b.area))


def cover_crop(width: int, height: int, bucket: Bucket) -> tuple[float, float, float, float]:
    """The centred box of a (width x height) image with the bucket's aspect ratio, as large as
    the image allows: resizing it to the bucket is "resize to cover, centre-crop the rest"."""
    if width / height > bucket.ratio:  # the image is wider: cut its sides
        crop_w, crop_h = height * bucket.ratio, float(height)
    else:  # taller (or equal): cut top and bottom
        crop_w, crop_h = float(width), width / bucket.ratio
    return ((width - crop_w) / 2, (height - crop_h) / 2, crop_w, crop_h)


def choose_bucket(
    width: int,
    height: int,
    buckets: Sequence[Bucket],
    *,
    name: str = "image",
) -> BucketChoice:
    """The bucket and crop for an image, or ``BucketError`` naming it (too small, too long)."""
    smallest = min(min(b.width, b.height) for b in buckets)
    if width < smallest or height < smallest:
        raise BucketError(
            f"{name} is {width}x{height} px, smaller than the smallest bucket side "
            f"({smallest} px): use a larger image."
        )
    bucket = nearest_bucket(width, height, buckets)
    crop = cover_crop(width, height, bucket)
    choice = BucketChoice(size=(width, height), bucket=bucket, crop=crop)
    widest = max(buckets, key=lambda b: b.ratio)
    tallest = min(buckets, key=lambda b: b.ratio)
    # Only beyond the extremes: between two buckets the crop is what the bucket steps allow.
    beyond = (bucket in (widest, tallest)) and bucket.ratio != 1
    if beyond and min(choice.kept_sides) < MIN_KEPT:
        raise BucketError(
            f"{name} is {width}x{height} px (aspect ratio {_ratio_text(width, height)}), beyond "
            f"the bucket limits ({_ratio_text(widest.height, widest.width)} to "
            f"{_ratio_text(widest.width, widest.height)}): its nearest bucket {bucket} would "
            f"cut away {1 - min(choice.kept_sides):.0%} of it. Crop it into parts, or use tiles."
        )
    return choice


def _ratio_text(width: float, height: float) -> str:
    return f"{width / height:.2g}:1" if width >= height else f"1:{height / width:.2g}"


def resize_to_bucket(image, choice: BucketChoice, *, resample=None):
    """The image's crop box resized to exactly the bucket (Pillow ``Image.resize`` with
    ``box``: one resampling of the source pixels, no intermediate image)."""
    from PIL import Image

    left, top, w, h = choice.crop
    return image.resize(
        (choice.bucket.width, choice.bucket.height),
        resample if resample is not None else Image.Resampling.BILINEAR,
        box=(left, top, left + w, top + h),
    )


def boxes_in_crop(
    boxes: Iterable[tuple[float, float, float, float]], choice: BucketChoice
) -> list[tuple[float, float, float, float]]:
    """Boxes (x, y, w, h in the image's pixels) as fractions (0..1) of the crop, clipped."""
    left, top, cw, ch = choice.crop
    out = []
    for x, y, w, h in boxes:
        x0, y0 = max(0.0, (x - left) / cw), max(0.0, (y - top) / ch)
        x1, y1 = min(1.0, (x + w - left) / cw), min(1.0, (y + h - top) / ch)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out


def mask_from_boxes(
    boxes: Iterable[tuple[float, float, float, float]], width: int, height: int
) -> list[list[float]]:
    """A (height x width) coverage map in 0..1 of boxes given as fractions (x, y, w, h): each
    cell holds the fraction of its area inside any box (boxes are unioned per cell, exactly
    for one box and an upper bound of 1 for overlaps). Used at latent size for masked loss."""
    grid = [[0.0] * width for _ in range(height)]
    for bx, by, bw, bh in boxes:
        x0, x1 = bx * width, (bx + bw) * width
        y0, y1 = by * height, (by + bh) * height
        for row in range(max(0, math.floor(y0)), min(height, math.ceil(y1))):
            cover_y = min(row + 1, y1) - max(row, y0)
            for col in range(max(0, math.floor(x0)), min(width, math.ceil(x1))):
                cover_x = min(col + 1, x1) - max(col, x0)
                grid[row][col] = min(1.0, grid[row][col] + cover_x * cover_y)
    return grid


def dominant_bucket(choices: Iterable[BucketChoice | Bucket]) -> Bucket | None:
    """The bucket most examples fall in (ties: the squarer, then the larger)."""
    counts: dict[Bucket, int] = {}
    for choice in choices:
        bucket = choice.bucket if isinstance(choice, BucketChoice) else choice
        counts[bucket] = counts.get(bucket, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda b: (counts[b], -abs(math.log(b.ratio)), b.area))
