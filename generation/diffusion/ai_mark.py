"""The visible "AI-generated" mark (GB 45438-2025's explicit label for images). No Django here.

The standard asks for text no lower than 5 % of the image's shorter side; the mark is drawn at
6 % (measured on the glyphs' ink, not the font size), white on an opaque dark band in a bottom
corner (bottom-right for right-to-left languages), in the visitor's language.

Fonts: Pillow reads the WOFF2 files of the vendored ``@fontsource`` Noto packages through
FreeType here, and shapes Uyghur's Arabic script with libraqm. Those packages split a font into
``unicode-range`` subsets (Noto Sans SC into ~100), so each character is drawn with the subset
file whose range holds it, as a browser does. Without them (or a character none covers) the
mark falls back to matplotlib's DejaVu Sans and the English text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

MARK_TEXT = {"en": "AI-generated", "zh": "人工智能生成", "ug": "سۈنئىي ئەقىل ياسىغان"}
RTL = {"ug", "ar", "fa", "he", "ur"}
TEXT_FRACTION = 0.06  # of the shorter side; the standard's floor is 0.05
FLOOR_FRACTION = 0.05
TEXT_COLOUR = (255, 255, 255)
BAND_COLOUR = (17, 17, 17)
WEIGHT = 700
# The @fontsource packages, in the order a character is looked up.
FONT_PACKAGES = ("noto-sans", "noto-sans-arabic", "noto-sans-sc")


@dataclass(frozen=True)
class DrawnMark:
    text: str
    language: str
    text_box: tuple[int, int, int, int]  # (left, top, right, bottom) of the glyphs' ink
    band_box: tuple[int, int, int, int]
    font: str

    @property
    def text_height(self) -> int:
        return self.text_box[3] - self.text_box[1]


_FACE = re.compile(r"@font-face\s*{(.*?)}", re.S)
_SRC = re.compile(r"url\(\./files/([^)]+\.woff2)\)")
_RANGE = re.compile(r"unicode-range:\s*([^;]+);")


@cache
def _subsets(fontsource_dir: str) -> tuple[tuple[Path, tuple[tuple[int, int], ...]], ...]:
    """(woff2 file, code point ranges) of every subset of every package, from their CSS."""
    found = []
    for package in FONT_PACKAGES:
        css = Path(fontsource_dir) / package / f"{WEIGHT}.css"
        if not css.is_file():
            continue
        for face in _FACE.findall(css.read_text(encoding="utf-8")):
            src, ranges = _SRC.search(face), _RANGE.search(face)
            if not (src and ranges):
                continue
            spans = []
            for part in ranges.group(1).split(","):
                low, _, high = part.strip().removeprefix("U+").removeprefix("u+").partition("-")
                spans.append((int(low, 16), int(high or low, 16)))
            found.append((css.parent / "files" / src.group(1), tuple(spans)))
    return tuple(found)


def _font_file(char: str, fontsource_dir: str | None) -> Path | None:
    if not fontsource_dir:
        return None
    code = ord(char)
    for path, spans in _subsets(fontsource_dir):
        if any(low <= code <= high for low, high in spans) and path.is_file():
            return path
    return None


def _fallback_font() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"


def _runs(text: str, fontsource_dir: str | None) -> list[tuple[str, Path]] | None:
    """The text cut where the font file changes; None when a character has no font."""
    runs: list[tuple[str, Path]] = []
    for char in text:
        path = _font_file(char, fontsource_dir) if not char.isspace() else None
        if path is None and char.isspace() and runs:
            path = runs[-1][1]
        if path is None:
            return None
        if runs and runs[-1][1] == path:
            runs[-1] = (runs[-1][0] + char, path)
        else:
            runs.append((char, path))
    return runs


def _layout(runs, size: int, direction: str):
    """Fonts and ink boxes of each run at ``size`` px (boxes relative to the run's origin)."""
    laid = []
    for text, path in runs:
        font = ImageFont.truetype(str(path), size)
        box = font.getbbox(text, direction=direction)
        laid.append((text, font, box, font.getlength(text, direction=direction)))
    return laid


def _ink(laid) -> tuple[int, int]:
    top = min(box[1] for _, _, box, _ in laid)
    bottom = max(box[3] for _, _, box, _ in laid)
    return top, bottom


def draw_ai_mark(
    image: Image.Image, language: str = "en", *, fontsource_dir: str | None = None
) -> tuple[Image.Image, DrawnMark]:
    """A copy of ``image`` (RGB) with the mark drawn; where and how big it was drawn."""
    language = language if language in MARK_TEXT else "en"
    text = MARK_TEXT[language]
    runs = _runs(text, fontsource_dir)
    if runs is None:  # no Noto subset for it here: English in DejaVu Sans
        language, text = "en", MARK_TEXT["en"]
        runs = [(text, _fallback_font())]
    rtl = language in RTL
    direction = "rtl" if rtl else "ltr"
    if rtl:
        runs = runs[::-1]  # visual order, right to left
    width, height = image.size
    short = min(width, height)
    target = max(1, math.ceil(TEXT_FRACTION * short))
    floor = max(1, math.ceil(FLOOR_FRACTION * short))

    # Grow the font until the ink is as tall as the target; shrink towards the floor only if
    # the text would not fit across the image.
    size = target
    for _ in range(200):
        laid = _layout(runs, size, direction)
        top, bottom = _ink(laid)
        if bottom - top >= target:
            break
        size += 1
    margin = max(1, round(0.02 * short))
    while sum(adv for *_, adv in laid) + 4 * margin > width and bottom - top > floor:
        size -= 1
        laid = _layout(runs, size, direction)
        top, bottom = _ink(laid)
        if bottom - top < floor:
            size += 1
            laid = _layout(runs, size, direction)
            top, bottom = _ink(laid)
            break

    text_width = math.ceil(sum(adv for *_, adv in laid))
    ink_height = bottom - top
    band_w, band_h = text_width + 2 * margin, ink_height + 2 * margin
    left = width - band_w - margin if rtl else margin
    left = max(0, left)
    band_top = max(0, height - band_h - margin)
    out = image.convert("RGB")  # a new image: the original is left as it is
    draw = ImageDraw.Draw(out)
    draw.rectangle((left, band_top, left + band_w - 1, band_top + band_h - 1), fill=BAND_COLOUR)
    x = left + margin
    y = band_top + margin - top
    for run_text, font, _, advance in laid:
        draw.text((x, y), run_text, font=font, fill=TEXT_COLOUR, direction=direction)
        x += advance
    drawn = DrawnMark(
        text=text,
        language=language,
        text_box=(x0 := left + margin, y0 := band_top + margin, x0 + text_width, y0 + ink_height),
        band_box=(left, band_top, left + band_w, band_top + band_h),
        font=", ".join(sorted({Path(p).name for _, p in runs})),
    )
    return out, drawn
