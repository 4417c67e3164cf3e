"""IIIF Presentation 3.0 documents (built with iiif-prezi3) and Image API 3.0 level1 info.

Semiotic annotations go on each canvas's ``annotations`` (never ``painting``): one
``describing`` annotation carrying the meaning (one TextualBody per language) and the
category, and one ``tagging`` annotation per motif term, each targeting the region as a
``#xywh=`` fragment of the canvas (canvas size = the original image size).
"""

from __future__ import annotations

from django.conf import settings
from iiif_prezi3 import (
    Annotation,
    AnnotationBody,
    AnnotationPage,
    Canvas,
    KeyValueString,
    Manifest,
    ServiceV3,
    TextualBody,
)
from iiif_prezi3 import Collection as IIIFCollection

from heritage.models import Collection, HeritageItem, ItemImage, SemioticAnnotation
from heritage.texts import CATEGORY_LABELS

IMAGE_CONTEXT = "http://iiif.io/api/image/3/context.json"


def iiif_langmap(value: dict | None, fallback: str = "") -> dict[str, list[str]]:
    """Our {"en": "..."} maps as IIIF {"en": ["..."]}; "none" when there is no text at all."""
    result = {lang: [text] for lang, text in (value or {}).items() if text}
    return result or {"none": [fallback]}


def _image_service(base: str, image: ItemImage) -> ServiceV3:
    return ServiceV3(id=f"{base}/iiif/image/{image.pk}", type="ImageService3", profile="level1")


def _sized(base: str, image: ItemImage, width: int, height: int) -> AnnotationBody:
    return AnnotationBody(
        id=f"{base}/iiif/image/{image.pk}/full/{width},{height}/0/default.jpg",
        type="Image",
        format="image/jpeg",
        width=width,
        height=height,
        service=[_image_service(base, image)],
    )


def _thumbnail(base: str, image: ItemImage | None) -> list[AnnotationBody] | None:
    if image is None or not image.thumbnail_id:
        return None
    return [_sized(base, image, image.thumbnail_width, image.thumbnail_height)]


def _annotation_items(
    base: str, canvas_id: str, annotation: SemioticAnnotation
) -> list[Annotation]:
    target = canvas_id
    if annotation.region is not None:
        target = f"{canvas_id}#xywh={','.join(str(v) for v in annotation.region)}"
    anno_base = f"{base}/iiif/annotations/{annotation.pk}"
    category = CATEGORY_LABELS[annotation.category]
    bodies = [
        TextualBody(
            type="TextualBody", value=text, language=lang, format="text/plain", purpose="describing"
        )
        for lang, text in annotation.meaning.items()
        if text
    ]
    bodies.append(
        TextualBody(
            type="TextualBody",
            value=category["en"],
            language="en",
            format="text/plain",
            purpose="classifying",
        )
    )
    result = [
        Annotation(
            id=f"{anno_base}/describing",
            motivation="describing",
            body=bodies if len(bodies) > 1 else bodies[0],
            target=target,
            label=iiif_langmap(category),
        )
    ]
    for motif in annotation.motifs.all():
        result.append(
            Annotation(
                id=f"{anno_base}/tagging/{motif.slug}",
                motivation="tagging",
                body=TextualBody(
                    type="TextualBody",
                    value=motif.label.get("en") or motif.slug,
                    language="en",
                    format="text/plain",
                ),
                target=target,
            )
        )
    return result


def item_manifest(item: HeritageItem, base: str) -> dict:
    """A Presentation 3.0 Manifest: one canvas per image, painting the largest derivative."""
    manifest_id = f"{base}/iiif/items/{item.pk}/manifest"
    metadata = [
        KeyValueString(label={"en": ["Accession number"]}, value={"none": [item.accession_number]})
    ]
    for label, value in (("Period", item.period), ("Place", item.place)):
        if value:
            metadata.append(KeyValueString(label={"en": [label]}, value={"none": [value]}))
    if item.provenance:
        metadata.append(
            KeyValueString(label={"en": ["Provenance"]}, value={"none": [item.provenance]})
        )
    images = list(item.images.all())
    manifest = Manifest(
        id=manifest_id,
        label=iiif_langmap(item.title, item.accession_number),
        metadata=metadata,
        requiredStatement=KeyValueString(
            label={"en": ["Attribution"], "zh": ["署名"], "ug": ["ئىگىدارلىق"]},
            value=iiif_langmap(item.credit_line, settings.ATELIER_ORGANISATION),
        ),
        homepage=[
            {
                "id": f"{base}/items/{item.pk}/",
                "type": "Text",
                "label": iiif_langmap(item.title, item.accession_number),
                "format": "text/html",
            }
        ],
        partOf=[{"id": f"{base}/iiif/collections/{item.collection.slug}", "type": "Collection"}],
    )
    if item.description:
        manifest.summary = iiif_langmap(item.description)
    if item.rights:
        manifest.rights = item.rights
    primary = item.primary_image
    thumbnail = _thumbnail(base, primary)
    if thumbnail:
        manifest.thumbnail = thumbnail
    canvases = []
    for index, image in enumerate(images, start=1):
        canvas_id = f"{manifest_id}/canvas/{image.pk}"
        canvas = Canvas(
            id=canvas_id,
            label={"none": [f"{item.accession_number} ({index})"]},
            width=image.width,
            height=image.height,
        )
        sizes = image.iiif_sizes()
        if sizes:
            width, height = sizes[-1]
            canvas.items = [
                AnnotationPage(
                    id=f"{canvas_id}/page",
                    items=[
                        Annotation(
                            id=f"{canvas_id}/page/painting",
                            motivation="painting",
                            body=_sized(base, image, width, height),
                            target=canvas_id,
                        )
                    ],
                )
            ]
            canvas.thumbnail = _thumbnail(base, image)
        else:
            canvas.items = [AnnotationPage(id=f"{canvas_id}/page", items=[])]
        annotations = []
        for annotation in image.annotations.all():
            annotations.extend(_annotation_items(base, canvas_id, annotation))
        if annotations:
            canvas.annotations = [AnnotationPage(id=f"{canvas_id}/annotations", items=annotations)]
        canvases.append(canvas)
    manifest.items = canvases
    return _as_dict(manifest)


def _as_dict(resource) -> dict:
    import json

    return json.loads(resource.jsonld())


def collection_document(collection: Collection, items: list[HeritageItem], base: str) -> dict:
    document = IIIFCollection(
        id=f"{base}/iiif/collections/{collection.slug}",
        label=iiif_langmap(collection.title, collection.slug),
        items=[
            {
                "id": f"{base}/iiif/items/{item.pk}/manifest",
                "type": "Manifest",
                "label": iiif_langmap(item.title, item.accession_number),
                **(
                    {"thumbnail": [t.model_dump() for t in thumb]}
                    if (thumb := _thumbnail(base, item.primary_image))
                    else {}
                ),
            }
            for item in items
        ],
    )
    if collection.description:
        document.summary = iiif_langmap(collection.description)
    return _as_dict(document)


def top_collection(collections: list[Collection], base: str) -> dict:
    document = IIIFCollection(
        id=f"{base}/iiif/collections",
        label={"en": [settings.ATELIER_ORGANISATION]},
        items=[
            {
                "id": f"{base}/iiif/collections/{c.slug}",
                "type": "Collection",
                "label": iiif_langmap(c.title, c.slug),
            }
            for c in collections
        ],
    )
    return _as_dict(document)


TILE_SIZE = 512


def scale_factors(width: int, height: int, tile: int = TILE_SIZE) -> list[int]:
    """1, 2, 4, ... until the whole image fits in one tile (what a deep-zoom viewer asks for)."""
    factors = [1]
    while max(width, height) / factors[-1] > tile:
        factors.append(factors[-1] * 2)
    return factors


def image_info(image: ItemImage, base: str) -> dict:
    """Image API 3.0 level1 info.json: the pre-rendered sizes plus 512 px tiles.

    Regions and sizes are cut from the display derivative (never the original, which may be
    restricted), so "max" is the display size and a deep zoom never shows more than it.
    """
    sizes = image.iiif_sizes()
    info = {
        "@context": IMAGE_CONTEXT,
        "id": f"{base}/iiif/image/{image.pk}",
        "type": "ImageService3",
        "protocol": "http://iiif.io/api/image",
        "profile": "level1",
        "width": image.width,
        "height": image.height,
        "sizes": [{"width": w, "height": h} for w, h in sizes],
    }
    if sizes:
        info["tiles"] = [
            {
                "width": TILE_SIZE,
                "height": TILE_SIZE,
                "scaleFactors": scale_factors(image.width, image.height),
            }
        ]
    if sizes and sizes[-1] != (image.width, image.height):
        # "max" is then the largest pre-rendered size, not the original.
        info["maxWidth"], info["maxHeight"] = sizes[-1]
    if image.item.rights:
        info["rights"] = image.item.rights
    return info


class ImageRequestError(ValueError):
    """A region or size this level1 service does not serve; the message says why."""


def parse_region(region: str, width: int, height: int) -> tuple[int, int, int, int]:
    """``full``, ``square`` or ``x,y,w,h`` (pixels of the full image), clipped to the image."""
    if region == "full":
        return 0, 0, width, height
    if region == "square":
        side = min(width, height)
        return (width - side) // 2, (height - side) // 2, side, side
    try:
        x, y, w, h = (int(v) for v in region.split(","))
    except ValueError:
        raise ImageRequestError(
            f"Unsupported region {region!r}: use full, square or x,y,w,h in pixels."
        ) from None
    if w <= 0 or h <= 0 or x < 0 or y < 0:
        raise ImageRequestError(f"Region {region!r} must have a positive width and height.")
    if x >= width or y >= height:
        raise ImageRequestError(f"Region {region!r} lies outside the {width}x{height} image.")
    return x, y, min(w, width - x), min(h, height - y)


def parse_size(
    size: str, region_w: int, region_h: int, max_w: int, max_h: int, source_scale: float = 1.0
) -> tuple[int, int]:
    """``max`` (the region at the source's resolution, ``source_scale`` of the full image),
    ``w,``, ``,h`` or ``w,h``; never larger than the region (no ``^`` upscaling) nor than
    maxWidth/maxHeight."""
    if size == "max":
        scale = min(source_scale, max_w / region_w, max_h / region_h)
        return max(1, round(region_w * scale)), max(1, round(region_h * scale))
    if size.startswith("^"):
        raise ImageRequestError("Upscaling (^) is not served.")
    try:
        w_text, h_text = size.split(",")
        w = int(w_text) if w_text else None
        h = int(h_text) if h_text else None
    except ValueError:
        raise ImageRequestError(f"Unsupported size {size!r}: use max, w,, ,h or w,h.") from None
    if w is None and h is None:
        raise ImageRequestError(f"Unsupported size {size!r}: use max, w,, ,h or w,h.")
    if w is None:
        w = max(1, round(region_w * h / region_h))
    if h is None:
        h = max(1, round(region_h * w / region_w))
    if w <= 0 or h <= 0:
        raise ImageRequestError(f"Size {size!r} must be positive.")
    if w > region_w or h > region_h:
        raise ImageRequestError(
            f"Size {size} is larger than the {region_w}x{region_h} region; upscaling is not served."
        )
    if w > max_w or h > max_h:
        raise ImageRequestError(f"Size {size} is larger than the largest served, {max_w}x{max_h}.")
    return w, h


def render_region(
    source, full_size: tuple[int, int], region: tuple[int, int, int, int], size: tuple[int, int]
):
    """Cut ``region`` (full-image pixels) out of ``source`` (a smaller derivative of it) and
    resize it to ``size``: a Pillow image."""
    from PIL import Image

    kx, ky = source.width / full_size[0], source.height / full_size[1]
    x, y, w, h = region
    box = (x * kx, y * ky, (x + w) * kx, (y + h) * ky)
    return source.resize(size, Image.Resampling.LANCZOS, box=box)
