"""Image checks and derivatives with Pillow (no Django): validation, RGB normalisation, resizes.

Kept apart from the services so the rules can be read (and tested) in one place.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALLOWED_FORMATS = {"JPEG", "PNG", "TIFF", "WEBP", "GIF", "BMP"}
THUMBNAIL_EDGE = 256
DISPLAY_EDGE = 1600


class ImageRejected(ValueError):
    """The upload is not an acceptable image; the message says why (shown to the user)."""


@dataclass(frozen=True)
class ImageInfo:
    format: str
    mode: str
    width: int  # after EXIF orientation
    height: int


def image_inspect(data: bytes, *, max_bytes: int, max_pixels: int) -> ImageInfo:
    """Check that ``data`` is one real, decodable image within the limits; raise ImageRejected."""
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    with warnings.catch_warnings():
        # Pillow warns above its own limit and raises above twice it; we apply ours first.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt, width, height = probe.format, probe.width, probe.height
                if width * height > max_pixels:
                    raise ImageRejected(
                        f"The image is {width}x{height} = {width * height:,} pixels; the limit is "
                        f"{max_pixels:,} pixels (decompression bomb protection)."
                    )
                if fmt not in ALLOWED_FORMATS:
                    raise ImageRejected(
                        f"Image format {fmt} is not accepted; use JPEG, PNG, TIFF or WebP."
                    )
                probe.verify()
            # verify() leaves the image unusable: reopen and decode every pixel.
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                mode = image.mode
                oriented = ImageOps.exif_transpose(image)
                width, height = oriented.size
        except ImageRejected:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(f"The image is too large to decode safely: {exc}") from None
        except UnidentifiedImageError:
            raise ImageRejected("The file is not an image Pillow can read.") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageRejected(f"The image is damaged or truncated: {exc}") from None
    return ImageInfo(format=fmt, mode=mode, width=width, height=height)


def _sixteen_bit_to_8(image: Image.Image) -> Image.Image:
    array = np.asarray(image)
    if array.dtype.kind == "f":
        top = float(array.max()) or 1.0
        scaled = np.clip(array / top * 255.0, 0, 255)
    else:
        # "I;16*" are 16-bit; "I" holds 16-bit PNGs too. Scale by the format's range.
        top = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        scaled = np.clip(array.astype(np.float64) / top * 255.0, 0, 255)
    return Image.fromarray(scaled.round().astype(np.uint8), mode="L")


def image_to_rgb(image: Image.Image) -> Image.Image:
    """EXIF orientation applied; CMYK, palette, 16-bit, greyscale and alpha turned into RGB.

    Transparent areas are laid on white, the paper colour of the kiosk.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = _sixteen_bit_to_8(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return image


def open_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image_to_rgb(image)


def resized_within(image: Image.Image, edge: int) -> Image.Image:
    """A copy whose long side is at most ``edge`` (never enlarged)."""
    copy = image.copy()
    copy.thumbnail((edge, edge), Image.Resampling.LANCZOS)
    return copy


def square_crop(image: Image.Image, resolution: int) -> Image.Image:
    """The centred square, resized to ``resolution`` px (the SD training input)."""
    return ImageOps.fit(image, (resolution, resolution), Image.Resampling.LANCZOS)


def encode_jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True)
    return out.getvalue()


def encode_png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False)
    return out.getvalue()
