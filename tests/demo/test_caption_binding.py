"""Caption binding of the shipped demo base model (demo/model), issue 21.

Generic captions that name a shape colour, a shape and a background colour, as the corpus writes
them ("a red circle on a blue background"). Every pixel is labelled with the nearest of the
caption's colours the corpus uses (``GENERIC_COLORS``), and then, by the corpus's own drawing
rules (``corpus._generic_sample``: one filled shape of radius 0.14-0.24 of the side on a flat
background):

* the named background colour *dominates*: it is the most frequent of all the corpus colours;
* the named shape is *detected*: the pixels of the named shape colour fill their bounding box
  as the corpus draws that shape (square 1, circle pi/4, triangle 1/2) - the nearest of the three
  ratios names the shape - and cover 2-20 % of the image (the corpus's range is 2.5-18 %).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from demo.corpus import GENERIC_COLORS
from demo.model_recipe import DEFAULT_OUT_DIR

STEPS, CFG = 35, 7.0
SEEDS = range(5)
# Colour pairs that are far apart in RGB (the background, then the shape's colour).
CASES = (
    ("red", "circle", "blue"),
    ("yellow", "square", "purple"),
    ("white", "triangle", "green"),
    ("blue", "square", "orange"),
    ("black", "circle", "yellow"),
    ("green", "triangle", "pink"),
)
FILL = {"square": 1.0, "circle": math.pi / 4, "triangle": 0.5}
# The plain colour words only (the Atlas words repeat some of their RGB values).
PALETTE = {
    n: GENERIC_COLORS[n]
    for n in (
        "red",
        "orange",
        "yellow",
        "green",
        "teal",
        "blue",
        "purple",
        "pink",
        "white",
        "black",
        "gray",
        "brown",
    )
}


def _labels(img: np.ndarray) -> tuple[list[str], np.ndarray]:
    names = list(PALETTE)
    colours = np.array([PALETTE[n] for n in names], dtype=np.float64)
    d = ((img[..., None, :].astype(np.float64) - colours) ** 2).sum(axis=-1)
    return names, d.argmin(axis=-1)


def dominant_colour(img: np.ndarray) -> str:
    names, labels = _labels(img)
    return names[int(np.bincount(labels.ravel(), minlength=len(names)).argmax())]


def detected_shape(img: np.ndarray, colour: str) -> str | None:
    names, labels = _labels(img)
    mask = labels == names.index(colour)
    share = mask.mean()
    if not 0.02 <= share <= 0.20:
        return None
    ys, xs = np.nonzero(mask)
    box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
    fill = mask.sum() / box
    return min(FILL, key=lambda shape: abs(FILL[shape] - fill))


def binding(pipe, cases=CASES, seeds=SEEDS) -> dict[str, float]:
    """Shares of (caption, seed) images whose named colour dominates / named shape is seen."""
    import torch

    colour_hits = shape_hits = total = 0
    for colour, shape, background in cases:
        prompt = f"a {colour} {shape} on a {background} background"
        for seed in seeds:
            out = pipe(
                prompt,
                num_inference_steps=STEPS,
                guidance_scale=CFG,
                generator=torch.Generator().manual_seed(seed),
            )
            img = np.asarray(out.images[0].convert("RGB"))
            colour_hits += dominant_colour(img) == background
            shape_hits += detected_shape(img, colour) == shape
            total += 1
    return {"colour": colour_hits / total, "shape": shape_hits / total, "n": total}


def test_the_rules_read_the_corpus_itself():
    """The measuring rules, checked on the corpus's own images (so they are the ground truth)."""
    from demo.corpus import generic_samples

    seen = hits = 0
    for s in generic_samples(400, size=64, seed=3, kind="shapes"):
        words = s.caption.split(" on ")
        if " and " in words[0]:
            continue  # one shape only, like the cases
        colour, shape = words[0].split(" ", 1)[1].rsplit(" ", 1)
        background = words[1].removesuffix(" background").split(" ", 1)[1]
        if colour not in PALETTE or background not in PALETTE:
            continue
        img = np.asarray(s.image.convert("RGB"))
        seen += 1
        hits += dominant_colour(img) == background and detected_shape(img, colour) == shape
    assert seen >= 20
    assert hits / seen >= 0.9, (hits, seen)  # measured 50 of 53


@pytest.fixture(scope="module")
def pipe():
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(1)
    p = StableDiffusionPipeline.from_pretrained(str(DEFAULT_OUT_DIR), local_files_only=True)
    p.set_progress_bar_config(disable=True)
    return p


@pytest.fixture(scope="module")
def measured(pipe):
    return binding(pipe)


def test_named_background_colour_dominates(measured):
    # 2026-12-03, the model of recipe 30d7106b: 30 of 30 (the first demo model, without offset
    # noise: 5 of 30).
    assert measured["colour"] >= 0.8, measured


def test_named_shape_is_drawn(measured):
    # 2026-12-03, recipe 30d7106b (10,000 U-Net steps): 26 of 30, circles 10, squares 7,
    # triangles 9 of 10 (5,000 steps: 13 of 30; the first demo model: 6 of 30).
    assert measured["shape"] >= 0.6, measured
