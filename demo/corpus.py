# ruff: noqa: RUF001  (the Chinese passages use full-width punctuation on purpose)
"""A seeded procedural heritage corpus for the offline demo (numpy + Pillow only, no Django).

Three sets, each deterministic per ``(seed, index)`` so ``atlas_samples(5)`` is a prefix of
``atlas_samples(10)``:

- ``atlas_samples``: Atlas-style warp-ikat silk — mirrored vertical warp bands, motif columns
  (lozenges, combs, tassels, fences, almonds) whose edges are feathered the way ikat is, by
  shifting each warp thread up or down and blurring along the warp.
- ``landscape_samples``: gazetteer-style ink landscapes on a silk-toned ground — layered
  mountains fading into mist, water with ripples, pavilions, boats.
- ``generic_samples``: flat shapes, stripes, grids and simple scenes in bright palettes,
  deliberately unlike the two styles: the demo base model is pre-trained on it so that a LoRA
  has something real to learn.

Every sample carries a caption and semiotic annotations (category, motif slugs, an optional
region ``(x, y, w, h)`` in pixels) that are true of the drawing; ``Annotation.ink`` is the RGB
colour the motif was drawn in where that applies. ``demo_passages()`` returns gazetteer-style
passages written for the demo (an invented county, not a real source).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ICONOGRAPHIC = "iconographic"
DIRECTIONAL = "directional"
CULTURAL_SEMIOTIC = "cultural_semiotic"

Region = tuple[int, int, int, int]  # x, y, w, h in pixels
RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Annotation:
    category: str
    motifs: tuple[str, ...]
    region: Region | None
    meaning: dict[str, str]
    ink: RGB | None = None  # the colour the motif is drawn in (for checks), if it has one


@dataclass(eq=False)
class Sample:
    key: str  # e.g. "atlas-0003"; stable per (seed, index)
    style: str  # "atlas" | "landscape" | "generic"
    title: dict[str, str]
    caption: str
    image: Image.Image
    annotations: list[Annotation] = field(default_factory=list)


@dataclass(frozen=True)
class Passage:
    source_work: str
    section: str
    original_text: str
    modern_paraphrase: str
    english_translation: str
    prompt_draft: str
    motifs: tuple[str, ...]  # which landscape motifs the passage describes


MOTIF_TERMS: dict[str, dict[str, str]] = {
    "atlas": {"en": "Atlas silk", "zh": "艾德莱斯绸"},
    "warp-band": {"en": "vertical warp band", "zh": "经向色带"},
    "ikat-edge": {"en": "feathered ikat edge", "zh": "扎经晕染边缘"},
    "mirror-symmetry": {"en": "mirror symmetry", "zh": "镜像对称"},
    "lozenge": {"en": "lozenge", "zh": "菱形纹"},
    "comb": {"en": "comb", "zh": "梳子纹"},
    "tassel": {"en": "tassel", "zh": "流苏纹"},
    "fence": {"en": "fence", "zh": "栅栏纹"},
    "almond": {"en": "almond (bodom)", "zh": "巴旦木纹"},
    "mountain": {"en": "mountain", "zh": "山"},
    "water": {"en": "water", "zh": "水"},
    "mist": {"en": "mist", "zh": "云雾"},
    "pavilion": {"en": "pavilion", "zh": "亭"},
    "boat": {"en": "boat", "zh": "舟"},
    "circle": {"en": "circle", "zh": "圆"},
    "square": {"en": "square", "zh": "方块"},
    "triangle": {"en": "triangle", "zh": "三角"},
    "stripes": {"en": "stripes", "zh": "条纹"},
    "grid": {"en": "grid", "zh": "网格"},
    "sun": {"en": "sun", "zh": "太阳"},
    "house": {"en": "house", "zh": "房屋"},
    "tree": {"en": "tree", "zh": "树"},
}

_STYLE_IDS = {"atlas": 1, "landscape": 2, "generic": 3}


def _rng(seed: int, style: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, _STYLE_IDS[style], index])


def _clip_region(x0: float, y0: float, x1: float, y1: float, size: int) -> Region:
    ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    ix1, iy1 = min(size, math.ceil(x1)), min(size, math.ceil(y1))
    return ix0, iy0, max(1, ix1 - ix0), max(1, iy1 - iy0)


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


# --------------------------------------------------------------------------- Atlas silk

ATLAS_PALETTES: dict[str, list[tuple[str, RGB]]] = {
    "khan-atlas": [
        ("crimson", (178, 28, 46)),
        ("saffron", (238, 186, 38)),
        ("emerald", (22, 122, 78)),
        ("indigo", (32, 42, 112)),
        ("ivory", (242, 234, 212)),
        ("black", (24, 18, 20)),
    ],
    "golden-atlas": [
        ("golden yellow", (236, 196, 40)),
        ("scarlet", (206, 36, 40)),
        ("black", (24, 18, 20)),
        ("ivory", (242, 234, 212)),
        ("magenta", (176, 30, 110)),
    ],
    "indigo-atlas": [
        ("indigo", (32, 42, 112)),
        ("sky blue", (90, 150, 210)),
        ("ivory", (242, 234, 212)),
        ("crimson", (178, 28, 46)),
        ("saffron", (238, 186, 38)),
    ],
    "pomegranate-atlas": [
        ("pomegranate red", (160, 20, 40)),
        ("leaf green", (40, 140, 60)),
        ("saffron", (238, 186, 38)),
        ("ivory", (242, 234, 212)),
        ("black", (24, 18, 20)),
    ],
}

ATLAS_MOTIFS = ("lozenge", "comb", "tassel", "fence", "almond")

_ATLAS_PHRASES = {
    "lozenge": "lozenge chain",
    "comb": "combs",
    "tassel": "tassels",
    "fence": "fence pattern",
    "almond": "almonds",
}

# Demo readings, phrased as readings: the demo corpus illustrates the annotation model.
_ATLAS_MEANINGS = {
    "lozenge": "Stacked lozenges, often read as protective eyes, guard the wearer.",
    "comb": "The comb is read as a sign of beauty, care and a well-kept household.",
    "tassel": "Tassels are read as amulets that turn away misfortune.",
    "fence": "The fence marks a boundary and is read as protection of home and family.",
    "almond": "The almond (bodom) is read as a sign of abundance and fertility.",
}


def _lozenge(X, yy, cx, w, P):
    d = np.abs(X - cx) / (w / 2) + np.abs(yy - P / 2) / (P / 2)
    return d <= 1.0, d <= 0.42


def _comb(X, yy, cx, w, P):
    inside = np.abs(X - cx) <= w / 2
    bar = inside & (yy >= 0.08 * P) & (yy < 0.26 * P)
    n_teeth = 5
    tooth_w = w / (2 * n_teeth - 1)
    teeth = inside & (yy >= 0.26 * P) & (yy < 0.72 * P)
    teeth &= np.floor((X - (cx - w / 2)) / tooth_w).astype(int) % 2 == 0
    return bar | teeth, bar & (np.abs(X - cx) <= w / 6)


def _tassel(X, yy, cx, w, P):
    knot = (X - cx) ** 2 + (yy - 0.22 * P) ** 2 <= (0.2 * w) ** 2
    strands = np.zeros_like(knot)
    thick = max(0.6, w * 0.06)
    span = yy - 0.22 * P
    in_len = (span >= 0) & (yy <= 0.9 * P)
    for t in (-1.0, -0.5, 0.0, 0.5, 1.0):
        x_line = cx + t * (w / 2) * span / (0.68 * P)
        strands |= in_len & (np.abs(X - x_line) <= thick)
    return knot | strands, knot & ((X - cx) ** 2 + (yy - 0.22 * P) ** 2 <= (0.09 * w) ** 2)


def _fence(X, Y, cx, w, P):
    thick = max(0.8, w * 0.13)
    phase = (Y / P) % 1.0
    tri = 1.0 - 4.0 * np.abs(phase - 0.5)  # -1..1 triangle wave
    zig = np.abs(X - (cx + (w / 2 - thick) * tri)) <= thick
    rails = np.abs(np.abs(X - cx) - (w / 2 - thick / 2)) <= thick / 2
    return zig | rails, zig & (np.abs(X - cx) <= w / 5)


def _almond(X, yy, cx, w, P):
    def lens(half_w, half_h):
        # Intersection of two circles: a vertical lens of the given half width/height.
        r_plus_a = half_h**2 / half_w
        radius = (r_plus_a + half_w) / 2
        a = (r_plus_a - half_w) / 2
        cy = P / 2
        left = (X - (cx - a)) ** 2 + (yy - cy) ** 2 <= radius**2
        right = (X - (cx + a)) ** 2 + (yy - cy) ** 2 <= radius**2
        return left & right

    return lens(w / 2, 0.44 * P), lens(w / 5, 0.2 * P)


def _ikat_feather(arr: np.ndarray, rng: np.random.Generator, jitter: int) -> np.ndarray:
    """Shift each warp thread (pixel column group) up/down, then blur along the warp."""
    size = arr.shape[0]
    thread = max(1, size // 128)
    offsets = np.repeat(rng.integers(-jitter, jitter + 1, size // thread + 1), thread)[:size]
    rows = (np.arange(size)[:, None] - offsets[None, :]) % size
    out = arr[rows, np.arange(size)[None, :]]
    k = np.array([1.0, 2.0, 3.0, 2.0, 1.0])[: 2 * min(2, jitter) + 1]
    k = k / k.sum()
    half = len(k) // 2
    return sum(np.roll(out, s - half, axis=0) * k[s] for s in range(len(k)))


def _atlas_sample(rng: np.random.Generator, index: int, size: int) -> Sample:
    palette_name = list(ATLAS_PALETTES)[rng.integers(len(ATLAS_PALETTES))]
    palette = ATLAS_PALETTES[palette_name]
    colors = np.array([c for _, c in palette], dtype=float)

    # Mirrored warp bands: widths drawn for the left half, reflected onto the right half.
    half = size / 2
    edges, x = [0.0], 0.0
    while x < half:
        x = min(half, x + size * rng.uniform(1 / 14, 1 / 6))
        edges.append(x)
    # Each cloth uses three or four of the palette's colours for its bands.
    band_palette = rng.choice(len(palette), size=int(rng.integers(3, 5)), replace=False)
    band_ids, last = [], -1
    for _ in range(len(edges) - 1):
        choice = int(rng.choice(band_palette))
        while choice == last:
            choice = int(rng.choice(band_palette))
        band_ids.append(choice)
        last = choice
    xs = np.arange(size) + 0.5
    xm = np.where(xs < half, xs, size - xs)  # mirror coordinate
    band_of_x = np.clip(np.searchsorted(edges, xm, side="right") - 1, 0, len(band_ids) - 1)
    col_ids = np.array(band_ids)[band_of_x]
    arr = np.broadcast_to(colors[col_ids][None, :, :], (size, size, 3)).copy()

    # Motif columns: one on the axis, optionally a mirrored pair.
    X, Y = np.meshgrid(xs, np.arange(size) + 0.5)
    columns: list[tuple[float, float, str]] = []
    centre_w = size * rng.uniform(0.2, 0.28)
    columns.append((half, centre_w, ATLAS_MOTIFS[rng.integers(len(ATLAS_MOTIFS))]))
    if rng.random() < 0.75:
        d = size * rng.uniform(0.3, 0.36)
        pair_w = size * rng.uniform(0.14, 0.2)
        motif = ATLAS_MOTIFS[rng.integers(len(ATLAS_MOTIFS))]
        columns += [(half - d, pair_w, motif), (half + d, pair_w, motif)]

    jitter = max(1, size // 48)
    annotations: list[Annotation] = []
    used_colors = {palette[i][0] for i in band_ids}
    pair_ink: dict[str, tuple[int, int]] = {}
    for cx, w, motif in columns:
        P = w * 1.5
        under = set(col_ids[max(0, int(cx - w / 2)) : int(cx + w / 2) + 1].tolist())
        if motif in pair_ink and cx > half:
            ink_i, ink2_i = pair_ink[motif]
        else:
            # The ink is the palette colour farthest from every band the column crosses.
            dist = [
                min(np.abs(colors[i] - colors[u]).sum() for u in under) for i in range(len(palette))
            ]
            ink_i = int(np.argmax(dist))
            ink2_i = int(
                np.argmax([np.abs(colors[i] - colors[ink_i]).sum() for i in range(len(palette))])
            )
            pair_ink[motif] = (ink_i, ink2_i)
        offset = rng.uniform(0, P)
        yy = (Y + offset) % P
        if motif == "lozenge":
            outer, inner = _lozenge(X, yy, cx, w, P)
        elif motif == "comb":
            outer, inner = _comb(X, yy, cx, w, P)
        elif motif == "tassel":
            outer, inner = _tassel(X, yy, cx, w, P)
        elif motif == "fence":
            outer, inner = _fence(X, Y + offset, cx, w, P)
        else:
            outer, inner = _almond(X, yy, cx, w, P)
        arr[outer] = colors[ink_i]
        arr[inner] = colors[ink2_i]
        used_colors |= {palette[ink_i][0], palette[ink2_i][0]}
        region = _clip_region(cx - w / 2 - 1, 0, cx + w / 2 + 1, size, size)
        ink = tuple(int(v) for v in colors[ink_i])
        en = MOTIF_TERMS[motif]["en"]
        annotations.append(
            Annotation(ICONOGRAPHIC, (motif,), region, {"en": f"A column of {en} motifs."}, ink)
        )
        annotations.append(
            Annotation(CULTURAL_SEMIOTIC, (motif,), region, {"en": _ATLAS_MEANINGS[motif]}, ink)
        )

    arr = _ikat_feather(arr, rng, jitter)
    # A faint weave: alternate warp threads slightly lighter and darker, plus yarn noise.
    weave = np.where((np.arange(size) // max(1, size // 128)) % 2 == 0, 1.03, 0.97)
    arr = arr * weave[None, :, None] + rng.normal(0, 3, arr.shape)

    annotations.insert(
        0,
        Annotation(
            DIRECTIONAL,
            ("warp-band", "ikat-edge", "mirror-symmetry"),
            None,
            {
                "en": "Warp bands run the length of the cloth, mirrored about the centre; "
                "the motif edges are feathered along the warp, as in ikat dyeing."
            },
        ),
    )
    motifs_in_order = list(dict.fromkeys(m for _, _, m in columns))
    color_words = [name for name, _ in palette if name in used_colors]
    caption = (
        f"Atlas silk, ikat pattern in {_join(color_words)}, vertical warp bands, "
        + ", ".join(_ATLAS_PHRASES[m] for m in motifs_in_order)
    )
    title_motifs = " and ".join(MOTIF_TERMS[m]["en"] for m in motifs_in_order)
    return Sample(
        key=f"atlas-{index:04d}",
        style="atlas",
        title={
            "en": f"Atlas silk with {title_motifs} ({palette_name.replace('-', ' ')})",
            "zh": "艾德莱斯绸纹样 " + "、".join(MOTIF_TERMS[m]["zh"] for m in motifs_in_order),
        },
        caption=caption,
        image=_to_image(arr),
        annotations=annotations,
    )


def atlas_samples(n: int, size: int = 256, seed: int = 0) -> list[Sample]:
    """``n`` Atlas ikat silk patterns of ``size`` px, deterministic per (seed, index)."""
    return [_atlas_sample(_rng(seed, "atlas", i), i, size) for i in range(n)]


# --------------------------------------------------------------------------- ink landscapes

SILK_GROUNDS: list[RGB] = [(226, 210, 176), (218, 198, 160), (230, 216, 186), (212, 192, 152)]
INK: RGB = (38, 36, 34)
BLUE_GREEN_INK: RGB = (52, 92, 84)


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    small = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray(small, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=float)


def _ridge(rng: np.random.Generator, xs: np.ndarray, size: int) -> np.ndarray:
    y = np.zeros_like(xs)
    for octave in range(1, 5):
        freq = rng.uniform(0.6, 1.6) * octave * 2 * math.pi / size
        y += rng.uniform(0.4, 1.0) / octave * np.sin(freq * xs + rng.uniform(0, 2 * math.pi))
    peak_x = rng.uniform(0.15, 0.85) * size
    y += 1.6 * np.exp(-(((xs - peak_x) / (0.18 * size)) ** 2))
    y -= y.min()
    return y / max(y.max(), 1e-6)


def _landscape_sample(rng: np.random.Generator, index: int, size: int) -> Sample:
    S = size
    ground = np.array(SILK_GROUNDS[rng.integers(len(SILK_GROUNDS))], dtype=float)
    blue_green = rng.random() < 0.3
    ink = np.array(BLUE_GREEN_INK if blue_green else INK, dtype=float)
    mottle = _smooth_noise(rng, S, 6) - 0.5
    arr = ground[None, None, :] * (1 + 0.05 * mottle[..., None]) * np.ones((S, S, 3))

    has_water = rng.random() < 0.8
    water_y = S * rng.uniform(0.62, 0.76) if has_water else float(S)
    xs = np.arange(S) + 0.5
    ys = (np.arange(S) + 0.5)[:, None]
    n_layers = int(rng.integers(2, 5))
    top = float(S)
    ridges = []
    for i in range(n_layers):
        depth = i / max(1, n_layers - 1)  # 0 = far, 1 = near
        base = water_y - (1 - depth) * S * 0.12
        height = S * rng.uniform(0.3, 0.5) * (1.1 - 0.5 * depth)
        ridge = base - height * (0.35 + 0.65 * _ridge(rng, xs, S))
        ridges.append(ridge)
        top = min(top, float(ridge.min()))
        alpha_peak = 0.3 + 0.5 * depth
        fade = S * 0.2
        below = ys - ridge[None, :]
        alpha = np.where(
            (below >= 0) & (ys < water_y), alpha_peak * np.clip(1 - below / fade, 0.15, 1), 0.0
        )
        # Texture strokes (cun): streaks of darker ink following the slope.
        streaks = 1 + 0.25 * (_smooth_noise(rng, S, max(4, S // 6)) - 0.5)
        alpha = np.clip(alpha * streaks, 0, 1)
        arr = arr * (1 - alpha[..., None]) + ink[None, None, :] * alpha[..., None]

    annotations: list[Annotation] = []
    caption_bits = [f"layered {'blue-green' if blue_green else 'ink'} mountains"]
    mountain_region = _clip_region(0, top, S, water_y, S)
    annotations.append(
        Annotation(
            ICONOGRAPHIC,
            ("mountain",),
            mountain_region,
            {"en": f"{n_layers} ranges of mountains, paler as they recede."},
            tuple(int(v) for v in ink),
        )
    )

    # Mist: a pale band drifting across the middle ranges.
    mist_y = float(
        np.clip(np.median(ridges[len(ridges) // 2]) + S * 0.1, top + S * 0.05, water_y - S * 0.04)
    )
    sigma = S * 0.045
    drift = 0.6 + 0.4 * _smooth_noise(rng, S, 4)
    mist = 0.75 * np.exp(-(((ys - mist_y) / sigma) ** 2)) * drift
    pale = np.minimum(ground + 22, 255)
    arr = arr * (1 - mist[..., None]) + pale[None, None, :] * mist[..., None]
    annotations.append(
        Annotation(
            ICONOGRAPHIC,
            ("mist",),
            _clip_region(0, mist_y - 2 * sigma, S, mist_y + 2 * sigma, S),
            {"en": "A band of mist separates the ranges."},
        )
    )
    caption_bits.append("drifting mist")

    img = _to_image(arr)
    draw = ImageDraw.Draw(img)
    ink_t = tuple(int(v) for v in ink)
    if has_water:
        water = np.asarray(img, dtype=float)
        water[int(water_y) :] = water[int(water_y) :] * 0.7 + np.minimum(ground + 18, 255) * 0.3
        img = _to_image(water)
        draw = ImageDraw.Draw(img)
        line = tuple(int(v) for v in (ground * 0.55 + ink * 0.45))
        for _ in range(int(rng.integers(6, 12))):
            y = rng.uniform(water_y + 2, S - 2)
            x0 = rng.uniform(0, S * 0.85)
            draw.line(
                [(x0, y), (x0 + S * rng.uniform(0.05, 0.15), y)], fill=line, width=max(1, S // 128)
            )
        annotations.append(
            Annotation(
                ICONOGRAPHIC,
                ("water",),
                _clip_region(0, water_y, S, S, S),
                {"en": "Still water with ripple strokes."},
            )
        )
        caption_bits.append("a calm river")

    if rng.random() < 0.75:
        near = ridges[-1]
        px = float(rng.uniform(0.15, 0.85) * S)
        s = S * rng.uniform(0.08, 0.11)
        gy = float(near[min(S - 1, int(px))]) + s * 0.3
        roof_y, body_y = gy - s, gy - s * 0.55
        draw.rectangle([px - s * 0.45, gy - s * 0.12, px + s * 0.45, gy], fill=ink_t)
        for dx in (-0.3, 0.3):
            draw.rectangle([px + dx * s - s * 0.06, body_y, px + dx * s + s * 0.06, gy], fill=ink_t)
        draw.polygon(
            [
                (px - s * 0.75, body_y),
                (px - s * 0.5, body_y - s * 0.12),
                (px, roof_y),
                (px + s * 0.5, body_y - s * 0.12),
                (px + s * 0.75, body_y),
            ],
            fill=ink_t,
        )
        annotations.append(
            Annotation(
                ICONOGRAPHIC,
                ("pavilion",),
                _clip_region(px - s * 0.8, roof_y - 1, px + s * 0.8, gy + 1, S),
                {"en": "A pavilion with upturned eaves on the near slope."},
                ink_t,
            )
        )
        annotations.append(
            Annotation(
                CULTURAL_SEMIOTIC,
                ("pavilion",),
                _clip_region(px - s * 0.8, roof_y - 1, px + s * 0.8, gy + 1, S),
                {"en": "A pavilion is a place for viewing the landscape and for retreat."},
                ink_t,
            )
        )
        caption_bits.append("a pavilion on the slope")

    if has_water and rng.random() < 0.7:
        s = S * rng.uniform(0.08, 0.12)
        bx = float(rng.uniform(0.15, 0.8) * S)
        by = float(rng.uniform(water_y + s * 0.8, S - s * 0.3))
        draw.polygon(
            [
                (bx - s, by - s * 0.2),
                (bx + s, by - s * 0.2),
                (bx + s * 0.6, by + s * 0.15),
                (bx - s * 0.6, by + s * 0.15),
            ],
            fill=ink_t,
        )
        draw.line([(bx, by - s * 0.2), (bx, by - s * 0.9)], fill=ink_t, width=max(1, S // 128))
        draw.polygon(
            [(bx, by - s * 0.85), (bx + s * 0.5, by - s * 0.3), (bx, by - s * 0.3)], fill=ink_t
        )
        region = _clip_region(bx - s - 1, by - s * 0.9 - 1, bx + s + 1, by + s * 0.15 + 1, S)
        annotations.append(
            Annotation(ICONOGRAPHIC, ("boat",), region, {"en": "A small sailing boat."}, ink_t)
        )
        annotations.append(
            Annotation(
                CULTURAL_SEMIOTIC,
                ("boat",),
                region,
                {"en": "A lone boat evokes the recluse who lives by the water."},
                ink_t,
            )
        )
        caption_bits.append("a boat on the water")

    annotations.insert(
        0,
        Annotation(
            DIRECTIONAL,
            ("mountain", "mist"),
            None,
            {"en": "Ranges recede from near and dark to far and pale; the eye climbs upward."},
        ),
    )
    arr = np.asarray(img.filter(ImageFilter.GaussianBlur(radius=max(0.4, S / 320))), dtype=float)
    arr = arr + rng.normal(0, 2.5, arr.shape)
    caption = "ink landscape on silk, " + ", ".join(caption_bits)
    motifs = [a.motifs[0] for a in annotations if a.category == ICONOGRAPHIC]
    return Sample(
        key=f"landscape-{index:04d}",
        style="landscape",
        title={
            "en": "Landscape with " + _join([MOTIF_TERMS[m]["en"] + "s" for m in motifs[:3]]),
            "zh": "山水图（" + "、".join(MOTIF_TERMS[m]["zh"] for m in motifs) + "）",
        },
        caption=caption,
        image=_to_image(arr),
        annotations=annotations,
    )


def landscape_samples(n: int, size: int = 256, seed: int = 0) -> list[Sample]:
    """``n`` gazetteer-style ink landscapes of ``size`` px, deterministic per (seed, index)."""
    return [_landscape_sample(_rng(seed, "landscape", i), i, size) for i in range(n)]


def scroll_samples(n: int, size: int = 256, seed: int = 0) -> list[Sample]:
    """``n`` long paintings so the demo exercises aspect-ratio buckets: even indices a 1:3
    hanging scroll (three landscapes stacked), odd a 4:1 handscroll (four side by side), each
    panel a landscape of ``size`` px with its annotations moved into place. Deterministic per
    (seed, index); the demo base model never trains on them (its recipe uses generic_samples)."""
    samples = []
    for index in range(n):
        hanging = index % 2 == 0
        panels = [
            _landscape_sample(_rng(seed, "landscape", 10_000 + 10 * index + j), j, size)
            for j in range(3 if hanging else 4)
        ]
        arrays = [np.asarray(panel.image) for panel in panels]
        arr = np.concatenate(arrays, axis=0 if hanging else 1)
        annotations = []
        for j, panel in enumerate(panels):
            dx, dy = (0, j * size) if hanging else (j * size, 0)
            for annotation in panel.annotations:
                region = annotation.region
                if region is not None:
                    region = (region[0] + dx, region[1] + dy, region[2], region[3])
                annotations.append(
                    Annotation(
                        category=annotation.category,
                        motifs=annotation.motifs,
                        region=region,
                        meaning=annotation.meaning,
                        ink=annotation.ink,
                    )
                )
        kind = ("hanging scroll", "挂轴") if hanging else ("handscroll", "手卷")
        samples.append(
            Sample(
                key=f"{'hanging' if hanging else 'hand'}scroll-{index:04d}",
                style="landscape",
                title={"en": f"{kind[0].capitalize()} {index + 1}", "zh": f"{kind[1]} {index + 1}"},
                caption=f"{kind[0]}, {panels[0].caption}",
                image=_to_image(arr),
                annotations=annotations,
            )
        )
    return samples


# --------------------------------------------------------------------------- generic set

GENERIC_COLORS: dict[str, RGB] = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (245, 220, 50),
    "green": (60, 170, 70),
    "teal": (30, 150, 150),
    "blue": (40, 90, 220),
    "purple": (130, 60, 180),
    "pink": (240, 130, 180),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
    "gray": (128, 128, 128),
    "brown": (130, 80, 40),
    # The colour words of Atlas captions, with the same RGB: a base model should know the words
    # a curator writes (SD 1.5 knows "indigo"); what it must not know is the Atlas *style*.
    "crimson": (178, 28, 46),
    "saffron": (238, 186, 38),
    "emerald": (22, 122, 78),
    "indigo": (32, 42, 112),
    "ivory": (242, 234, 212),
    "golden yellow": (236, 196, 40),
    "scarlet": (206, 36, 40),
    "magenta": (176, 30, 110),
    "sky blue": (90, 150, 210),
    "pomegranate red": (160, 20, 40),
    "leaf green": (40, 140, 60),
}
GENERIC_KINDS = ("shapes", "stripes", "grid", "scene")


def _a(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _pick_colors(rng: np.random.Generator, k: int) -> list[str]:
    names = list(GENERIC_COLORS)
    return [names[i] for i in rng.choice(len(names), size=k, replace=False)]


def _generic_sample(rng: np.random.Generator, index: int, size: int, kind: str | None) -> Sample:
    S = size
    up = 2  # draw at 2x then downsample: clean anti-aliased edges
    kind = kind or GENERIC_KINDS[rng.integers(len(GENERIC_KINDS))]
    annotations: list[Annotation] = []
    if kind == "shapes":
        names = _pick_colors(rng, 3)
        bg = names[0]
        img = Image.new("RGB", (S * up, S * up), GENERIC_COLORS[bg])
        draw = ImageDraw.Draw(img)
        n_shapes = int(rng.integers(1, 3))
        parts = []
        for k in range(n_shapes):
            shape = ("circle", "square", "triangle")[rng.integers(3)]
            color = names[1 + k]
            r = S * rng.uniform(0.14, 0.24)
            # Two shapes sit in opposite halves so they never hide each other.
            lo, hi = (0.0, 1.0) if n_shapes == 1 else ((0.0, 0.5) if k == 0 else (0.5, 1.0))
            cx = rng.uniform(lo * S + r, hi * S - r)
            cy = rng.uniform(r, S - r)
            box = [(cx - r) * up, (cy - r) * up, (cx + r) * up, (cy + r) * up]
            fill = GENERIC_COLORS[color]
            if shape == "circle":
                draw.ellipse(box, fill=fill)
            elif shape == "square":
                draw.rectangle(box, fill=fill)
            else:
                draw.polygon([(box[0], box[3]), (box[2], box[3]), (cx * up, box[1])], fill=fill)
            annotations.append(
                Annotation(
                    ICONOGRAPHIC,
                    (shape,),
                    _clip_region(cx - r, cy - r, cx + r, cy + r, S),
                    {"en": f"A {color} {shape}."},
                    fill,
                )
            )
            parts.append(f"{_a(color)} {shape}")
        caption = f"{' and '.join(parts)} on {_a(bg)} background"
    elif kind == "stripes":
        a, b = _pick_colors(rng, 2)
        diagonal = rng.random() < 0.5
        width = S * rng.uniform(0.06, 0.16)
        yy, xx = np.mgrid[0:S, 0:S] + 0.5
        coord = (xx + yy) / math.sqrt(2) if diagonal else yy
        mask = (np.floor(coord / width) % 2 == 0)[..., None]
        arr = np.where(mask, GENERIC_COLORS[a], GENERIC_COLORS[b]).astype(float)
        img = _to_image(arr).resize((S * up, S * up), Image.Resampling.NEAREST)
        direction = "diagonal" if diagonal else "horizontal"
        annotations.append(
            Annotation(
                DIRECTIONAL, ("stripes",), None, {"en": f"{direction.capitalize()} stripes."}
            )
        )
        caption = f"{direction} {a} and {b} stripes"
    elif kind == "grid":
        a, b = _pick_colors(rng, 2)
        cells = int(rng.integers(3, 9))
        yy, xx = np.mgrid[0:S, 0:S] * cells // S
        if rng.random() < 0.5:
            mask = ((xx + yy) % 2 == 0)[..., None]
            caption = f"{_a(a)} and {b} checkerboard grid"
        else:
            line = max(1, S // 32)
            pitch = S / cells
            yi, xi = np.mgrid[0:S, 0:S]
            mask = (((xi % pitch) < line) | ((yi % pitch) < line))[..., None]
            caption = f"a grid of {a} lines on {_a(b)} background"
        arr = np.where(mask, GENERIC_COLORS[a], GENERIC_COLORS[b]).astype(float)
        img = _to_image(arr).resize((S * up, S * up), Image.Resampling.NEAREST)
        annotations.append(Annotation(DIRECTIONAL, ("grid",), None, {"en": "A regular grid."}))
    else:
        sky_name, sky = [
            ("blue", (110, 170, 235)),
            ("orange", (245, 160, 90)),
            ("purple", (90, 70, 150)),
        ][rng.integers(3)]
        field_name = ("green", "yellow", "brown")[rng.integers(3)]
        house_color = ("red", "white", "blue", "pink")[rng.integers(4)]
        horizon = S * rng.uniform(0.55, 0.7)
        img = Image.new("RGB", (S * up, S * up), sky)
        draw = ImageDraw.Draw(img)
        draw.rectangle([0, horizon * up, S * up, S * up], fill=GENERIC_COLORS[field_name])
        r = S * rng.uniform(0.07, 0.1)
        sx, sy = rng.uniform(r, S - r), rng.uniform(r, horizon * 0.6)
        draw.ellipse(
            [(sx - r) * up, (sy - r) * up, (sx + r) * up, (sy + r) * up],
            fill=GENERIC_COLORS["yellow"],
        )
        hw = S * rng.uniform(0.14, 0.2)
        hx = rng.uniform(0.05 * S, 0.95 * S - hw)
        hy = horizon + S * 0.05
        draw.rectangle(
            [hx * up, (hy - hw) * up, (hx + hw) * up, hy * up], fill=GENERIC_COLORS[house_color]
        )
        draw.polygon(
            [
                (hx * up - 2, (hy - hw) * up),
                ((hx + hw) * up + 2, (hy - hw) * up),
                ((hx + hw / 2) * up, (hy - hw * 1.6) * up),
            ],
            fill=GENERIC_COLORS["black"],
        )
        annotations += [
            Annotation(
                ICONOGRAPHIC,
                ("sun",),
                _clip_region(sx - r, sy - r, sx + r, sy + r, S),
                {"en": "The sun."},
                GENERIC_COLORS["yellow"],
            ),
            Annotation(
                ICONOGRAPHIC,
                ("house",),
                _clip_region(hx, hy - hw * 1.6, hx + hw, hy, S),
                {"en": f"A {house_color} house with a black roof."},
                GENERIC_COLORS[house_color],
            ),
        ]
        caption = (
            f"a simple scene, {sky_name} sky, yellow sun, {field_name} field, "
            f"{_a(house_color)} house"
        )
    img = img.resize((S, S), Image.Resampling.BOX)
    return Sample(
        key=f"generic-{index:05d}",
        style="generic",
        title={"en": caption[0].upper() + caption[1:]},
        caption=caption,
        image=img,
        annotations=annotations,
    )


def generic_samples(n: int, size: int = 64, seed: int = 0, kind: str | None = None) -> list[Sample]:
    """``n`` generic pre-training images (shapes, stripes, grids, scenes); ``kind`` fixes one."""
    return [_generic_sample(_rng(seed, "generic", i), i, size, kind) for i in range(n)]


# --------------------------------------------------------------------------- passages

DEMO_SOURCE = "Qingshan County Gazetteer (demo text written for Atelier)"


def demo_passages() -> list[Passage]:
    """Gazetteer-style passages written for the demo: original, paraphrase, English, prompt."""
    return [
        Passage(
            DEMO_SOURCE,
            "Geography · Mountains",
            "青山在县西三十里，层峦叠嶂，烟云出没，望之如屏。",
            "青山位于县城以西三十里，山峦层层叠叠，云雾时隐时现，远看像一道屏风。",
            "Green Mountain lies thirty li west of the county seat: range upon range, with mist "
            "rising and vanishing among them; from afar it stands like a folding screen.",
            "layered ink mountains receding into mist, one range behind another like a screen",
            ("mountain", "mist"),
        ),
        Passage(
            DEMO_SOURCE,
            "Geography · Rivers",
            "清溪出青山之阴，东流入湖，水平如镜，渔舟往来。",
            "清溪发源于青山北面，向东流入湖中，水面平静如镜，渔船来来往往。",
            "Clear Brook rises on the north side of Green Mountain and flows east into the lake; "
            "its water is as flat as a mirror, and fishing boats come and go.",
            "a calm river flowing below ink mountains, a small fishing boat on mirror-still water",
            ("water", "boat", "mountain"),
        ),
        Passage(
            DEMO_SOURCE,
            "Antiquities · Pavilions",
            "望云亭在青山半麓，明时邑人所建，登之可见全湖。",
            "望云亭建在青山半山腰，是明代本地人修建的，登上亭子可以看到整个湖面。",
            "Cloud-Watching Pavilion stands halfway up Green Mountain, built by townspeople in the "
            "Ming; from it one sees the whole lake.",
            "a pavilion with upturned eaves on a mountain slope above a lake, mist below",
            ("pavilion", "mountain", "water", "mist"),
        ),
        Passage(
            DEMO_SOURCE,
            "Customs · Seasons",
            "每岁秋晴，邑人泛舟湖上，远山如黛，暮霭四合。",
            "每年秋天晴朗的日子，本地人在湖上划船，远处的山像黛色的眉，傍晚的雾气四面合拢。",
            "Each clear autumn the townspeople go boating on the lake; the far hills are dark as "
            "painted brows, and the evening haze closes in on every side.",
            "boats on a lake in autumn, distant dark hills, evening haze closing in",
            ("boat", "water", "mountain", "mist"),
        ),
    ]
