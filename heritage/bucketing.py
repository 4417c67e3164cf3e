"""How a training example will be cropped: the example's box and the bucket training uses.

The bucket arithmetic lives with the training loop (``generation/diffusion/buckets.py``);
heritage sits below generation and never imports it. The generation app registers its planner
here when it starts (``GenerationConfig.ready``), so the dataset page and the freeze job use
exactly the crop training will use. Without a planner (generation not installed) datasets get
the old centred square.

The box geometry (a region with its margin, textile tiles) is heritage's own: it reads the
catalogue's annotations.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class BucketPlan:
    """The bucket (width, height) an image of some size trains at, the crop box (x, y, w, h
    in that image's pixels) resized to it, and the smallest side any bucket has."""

    bucket: tuple[int, int]
    crop: tuple[float, float, float, float]
    min_side: int

    @property
    def label(self) -> str:
        return f"{self.bucket[0]}x{self.bucket[1]}"


# (width, height, resolution, name) -> BucketPlan; raises ValueError naming the image when
# no bucket can take it.
Planner = Callable[[int, int, int, str], BucketPlan]
_planners: list[Planner] = []


def register_bucket_planner(planner: Planner) -> None:
    _planners[:] = [planner]


def bucket_plan(width: int, height: int, *, resolution: int, name: str) -> BucketPlan:
    """The registered planner's plan, or the centred square when none is registered."""
    if _planners:
        return _planners[0](width, height, resolution, name)
    return square_plan(width, height, resolution)


def example_crop(
    *,
    image_size: tuple[int, int],
    box: list[int] | tuple[int, ...],
    resolution: int,
    bucketing: bool,
    name: str,
) -> tuple[BucketPlan, tuple[float, float, float, float]]:
    """The plan of an example (``box`` of the original, or all of it) and its crop box in the
    original's pixels: what the dataset page shows and the freeze job crops. ValueError
    naming the image when no bucket can take it."""
    x, y, w, h = box or (0, 0, image_size[0], image_size[1])
    if bucketing:
        plan = bucket_plan(w, h, resolution=resolution, name=name)
    else:
        plan = square_plan(w, h, resolution)
    left, top, cw, ch = plan.crop
    return plan, (x + left, y + top, cw, ch)


def square_plan(width: int, height: int, resolution: int) -> BucketPlan:
    """The old centred square (datasets built without bucketing)."""
    side = min(width, height)
    return BucketPlan(
        bucket=(resolution, resolution),
        crop=((width - side) / 2, (height - side) / 2, float(side), float(side)),
        min_side=1,
    )


def region_box(
    region: tuple[int, int, int, int], image_size: tuple[int, int], *, margin: float = 0.1
) -> tuple[int, int, int, int]:
    """An annotation region (x, y, w, h) grown by ``margin`` of its size on every side,
    clipped to the image: the box a region example is cut from."""
    x, y, w, h = region
    dx, dy = round(w * margin), round(h * margin)
    left, top = max(0, x - dx), max(0, y - dy)
    right, bottom = min(image_size[0], x + w + dx), min(image_size[1], y + h + dy)
    return (left, top, right - left, bottom - top)


def tile_boxes(
    image_size: tuple[int, int], *, tile: int, count: int, seed: int, grid: bool = False
) -> list[tuple[int, int, int, int]]:
    """Square ``tile`` px boxes of a large textile image at its own scale: ``count`` seeded
    random positions, or (``grid``) the non-overlapping grid, at most ``count`` of them.
    Empty when the image is smaller than one tile."""
    width, height = image_size
    if width < tile or height < tile or count <= 0:
        return []
    if grid:
        boxes = [
            (left, top, tile, tile)
            for top in range(0, height - tile + 1, tile)
            for left in range(0, width - tile + 1, tile)
        ]
        return boxes[:count]
    rng = random.Random(seed)
    return [
        (rng.randint(0, width - tile), rng.randint(0, height - tile), tile, tile)
        for _ in range(count)
    ]


def regions_in_crop(
    regions: list[tuple[int, int, int, int]],
    crop: tuple[float, float, float, float],
    size: tuple[int, int],
) -> list[list[int]]:
    """Regions (x, y, w, h in the original's pixels) in the pixels of a crop file of ``size``
    made from ``crop`` (clipped; regions outside it dropped)."""
    left, top, cw, ch = crop
    sx, sy = size[0] / cw, size[1] / ch
    out = []
    for x, y, w, h in regions:
        x0, y0 = max(0.0, (x - left) * sx), max(0.0, (y - top) * sy)
        x1, y1 = min(size[0], (x + w - left) * sx), min(size[1], (y + h - top) * sy)
        if x1 - x0 >= 1 and y1 - y0 >= 1:
            out.append([round(x0), round(y0), round(x1 - x0), round(y1 - y0)])
    return out
