"""Every write of the heritage catalogue (keyword-only, full_clean, transactions with files)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Any, BinaryIO, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Max
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image

from archives.services import atomic_with_files, stored_file_read, stored_file_save
from heritage import imaging
from heritage.bucketing import (
    bucket_plan,
    example_crop,
    region_box,
    regions_in_crop,
    tile_boxes,
)
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    TrainingDataset,
    TrainingExample,
    Versioned,
    langmap_get,
)
from heritage.selectors import dataset_selection_images
from jobs.models import Job

CATEGORY_WORDS = {
    SemioticAnnotation.Category.ICONOGRAPHIC: "iconographic motif",
    SemioticAnnotation.Category.DIRECTIONAL: "directional layout",
    SemioticAnnotation.Category.CULTURAL_SEMIOTIC: "cultural symbol",
}
CATEGORY_ORDER = [c.value for c in SemioticAnnotation.Category]
# The build options of a dataset (issue 20), copied into each new version.
DATASET_OPTIONS = (
    "bucketing",
    "region_examples",
    "region_margin",
    "tiles_per_image",
    "tile_grid",
    "masked_loss",
    "unmasked_weight",
)


def _save(instance) -> None:
    instance.full_clean()
    instance.save()


class VersionConflict(Exception):
    """The record changed since the caller's copy (its ``version`` moved on): nothing written."""

    def __init__(self, instance: Versioned, *, expected: int, current: int | None) -> None:
        self.instance, self.expected, self.current = instance, expected, current
        name = instance._meta.verbose_name
        super().__init__(
            f"This {name} was changed by someone else since your copy (your version {expected}, "
            f"now {current}): fetch it again, re-apply your change and send the new ETag."
        )


V = TypeVar("V", bound=Versioned)


def _versioned_update(instance: V, fields: dict[str, Any], *, expected_version: int | None) -> V:
    """Write only ``fields`` of ``instance``'s row and bump its version, in one transaction.

    The conditional UPDATE (``version = expected``) takes the row's write lock first, so of two
    writers holding the same version exactly one gets through and the other gets
    VersionConflict; without ``expected_version`` the write still touches only the fields
    given (last writer wins per field, never reverting a field it did not send). Validation
    runs on the row as it is now, with the new values. Call inside a transaction.
    """
    model = type(instance)
    rows = model.objects.filter(pk=instance.pk)
    if expected_version is not None:
        rows = rows.filter(version=expected_version)
    if not rows.update(version=F("version") + 1):
        current = model.objects.filter(pk=instance.pk).values_list("version", flat=True).first()
        raise VersionConflict(instance, expected=expected_version or 0, current=current)
    fresh = model.objects.get(pk=instance.pk)  # under the write lock just taken
    for name, value in fields.items():
        setattr(fresh, name, value)
    fresh.full_clean()
    auto_now = [f.name for f in model._meta.concrete_fields if getattr(f, "auto_now", False)]
    # post_save still fires (the catalogue version bump that expires cached API answers).
    fresh.save(update_fields=[*fields, "version", *auto_now])
    for field in model._meta.concrete_fields:  # the caller's instance shows the row as saved
        setattr(instance, field.attname, getattr(fresh, field.attname))
    return instance


def _read_upload(content: bytes | BinaryIO) -> bytes:
    if isinstance(content, bytes | bytearray):
        return bytes(content)
    if hasattr(content, "size") and content.size > settings.ATELIER_MAX_IMAGE_BYTES:
        raise ValidationError(
            {
                "file": f"The file is {content.size:,} bytes; the limit is "
                f"{settings.ATELIER_MAX_IMAGE_BYTES:,} bytes."
            }
        )
    content.seek(0)
    # Read one byte past the limit so an oversized stream is caught without reading it all.
    return content.read(settings.ATELIER_MAX_IMAGE_BYTES + 1)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "file"


# --- collections, items, vocabulary, annotations, passages --------------------------------


def collection_create(
    *, slug: str, title: dict, description: dict | None = None, published: bool = False
) -> Collection:
    collection = Collection(
        slug=slug, title=title, description=description or {}, published=published
    )
    _save(collection)
    return collection


COLLECTION_FIELDS = ("slug", "title", "description", "published", "position")


def collection_update(
    *, collection: Collection, expected_version: int | None = None, **fields: Any
) -> Collection:
    """Change the given fields only; ``expected_version`` (from If-Match) refuses a stale copy
    with VersionConflict."""
    unknown = set(fields) - set(COLLECTION_FIELDS)
    if unknown:
        raise ValueError(f"unknown collection fields: {sorted(unknown)}")
    with transaction.atomic():
        return _versioned_update(collection, fields, expected_version=expected_version)


ITEM_FIELDS = (
    "title",
    "description",
    "period",
    "place",
    "provenance",
    "rights",
    "credit_line",
    "published",
)


def item_create(
    *, collection: Collection, accession_number: str, title: dict, **fields: Any
) -> HeritageItem:
    unknown = set(fields) - set(ITEM_FIELDS)
    if unknown:
        raise ValueError(f"unknown item fields: {sorted(unknown)}")
    item = HeritageItem(
        collection=collection, accession_number=accession_number, title=title, **fields
    )
    _save(item)
    return item


def item_update(
    *, item: HeritageItem, expected_version: int | None = None, **fields: Any
) -> HeritageItem:
    """Change the given fields only; ``expected_version`` (from If-Match) refuses a stale copy
    with VersionConflict."""
    unknown = set(fields) - set(ITEM_FIELDS) - {"collection", "accession_number"}
    if unknown:
        raise ValueError(f"unknown item fields: {sorted(unknown)}")
    with transaction.atomic():
        return _versioned_update(item, fields, expected_version=expected_version)


def motif_term_get_or_create(*, slug: str, label: dict | None = None) -> MotifTerm:
    term = MotifTerm.objects.filter(slug=slug).first()
    if term is None:
        term = MotifTerm(slug=slug, label=label or {"en": slug.replace("-", " ")})
        _save(term)
    elif label and term.label != label:
        term.label = label
        _save(term)
    return term


def annotation_create(
    *,
    image: ItemImage,
    category: str,
    motifs: Iterable[MotifTerm] = (),
    region: tuple[int, int, int, int] | None = None,
    meaning: dict | None = None,
    annotator=None,
    annotated_on: date | None = None,
) -> SemioticAnnotation:
    x, y, w, h = region if region is not None else (None, None, None, None)
    annotation = SemioticAnnotation(
        image=image,
        category=category,
        region_x=x,
        region_y=y,
        region_w=w,
        region_h=h,
        meaning=meaning or {},
        annotator=annotator if getattr(annotator, "is_authenticated", False) else None,
        annotated_on=annotated_on or timezone.localdate(),
    )
    with transaction.atomic():
        _save(annotation)
        annotation.motifs.set(list(motifs))
    return annotation


def annotation_update(
    *,
    annotation: SemioticAnnotation,
    motifs: Iterable[MotifTerm] | None = None,
    expected_version: int | None = None,
    **fields: Any,
) -> SemioticAnnotation:
    with transaction.atomic():
        _versioned_update(annotation, fields, expected_version=expected_version)
        if motifs is not None:
            annotation.motifs.set(list(motifs))
    return annotation


def annotation_delete(*, annotation: SemioticAnnotation) -> None:
    """Remove a reading; frozen datasets keep their captions (they copied the text)."""
    with transaction.atomic():
        annotation.delete()


PASSAGE_FIELDS = (
    "source_work",
    "section",
    "original_text",
    "modern_paraphrase",
    "english_translation",
    "translations",
    "prompt_draft",
    "approved_prompt",
    "published",
)


def passage_create(*, items: Iterable[HeritageItem] = (), **fields: Any) -> GazetteerPassage:
    unknown = set(fields) - set(PASSAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown passage fields: {sorted(unknown)}")
    passage = GazetteerPassage(**fields)
    with transaction.atomic():
        _save(passage)
        passage.items.set(list(items))
    return passage


def passage_update(
    *,
    passage: GazetteerPassage,
    items: Iterable[HeritageItem] | None = None,
    expected_version: int | None = None,
    **fields: Any,
) -> GazetteerPassage:
    """Change the given fields (and items, when given) only; ``expected_version`` (from
    If-Match) refuses a stale copy with VersionConflict."""
    unknown = set(fields) - set(PASSAGE_FIELDS)
    if unknown:
        raise ValueError(f"unknown passage fields: {sorted(unknown)}")
    with transaction.atomic():
        _versioned_update(passage, fields, expected_version=expected_version)
        if items is not None:
            passage.items.set(list(items))
    return passage


# --- images ---------------------------------------------------------------------------------


def item_image_create(
    *,
    item: HeritageItem,
    content: bytes | BinaryIO,
    filename: str,
    is_primary: bool = False,
    caption: dict | None = None,
    derivatives: str = "job",
    user=None,
) -> ItemImage:
    """Validate an upload, keep the original byte for byte, and make derivatives.

    ``derivatives``: "job" queues ``heritage.derivatives`` on the default queue (after commit),
    "now" makes them in this call, "none" leaves them for later. Bad images raise
    ValidationError({"file": reason}); nothing is written then.
    """
    data = _read_upload(content)
    try:
        info = imaging.image_inspect(
            data,
            max_bytes=settings.ATELIER_MAX_IMAGE_BYTES,
            max_pixels=settings.ATELIER_MAX_IMAGE_PIXELS,
        )
    except imaging.ImageRejected as exc:
        raise ValidationError({"file": str(exc)}) from None
    content_type = Image_MIME.get(info.format, "application/octet-stream")
    with atomic_with_files():
        original = stored_file_save(
            name=f"heritage/originals/{_safe_name(item.accession_number)}/{_safe_name(filename)}",
            content=data,
            content_type=content_type,
        )
        if is_primary:
            item.images.update(is_primary=False)
        first = not item.images.exists()
        position = (item.images.aggregate(m=Max("position"))["m"] or 0) + (0 if first else 1)
        image = ItemImage(
            item=item,
            original=original,
            original_filename=filename[:255],
            original_format=info.format,
            original_mode=info.mode,
            width=info.width,
            height=info.height,
            is_primary=is_primary or first,
            position=position,
            caption=caption or {},
        )
        _save(image)
        if derivatives == "now":
            image = item_image_make_derivatives(image=image)
        elif derivatives == "job":
            from jobs.queue import job_enqueue

            job_enqueue(kind="heritage.derivatives", params={"image_id": image.pk}, user=user)
    return image


Image_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}


def item_image_make_derivatives(*, image: ItemImage, force: bool = False) -> ItemImage:
    """Thumbnail and display JPEGs (RGB, EXIF orientation applied). Idempotent."""
    if image.derivatives_ready and not force:
        return image
    rgb = imaging.open_rgb(stored_file_read(image.original))
    base = f"heritage/derivatives/{image.pk}"
    with atomic_with_files():
        locked = ItemImage.objects.select_for_update().get(pk=image.pk)
        if locked.derivatives_ready and not force:
            return locked
        thumb = imaging.resized_within(rgb, imaging.THUMBNAIL_EDGE)
        display = imaging.resized_within(rgb, imaging.DISPLAY_EDGE)
        locked.thumbnail = stored_file_save(
            name=f"{base}/thumbnail.jpg",
            content=imaging.encode_jpeg(thumb),
            content_type="image/jpeg",
        )
        locked.thumbnail_width, locked.thumbnail_height = thumb.size
        locked.display = stored_file_save(
            name=f"{base}/display.jpg",
            content=imaging.encode_jpeg(display),
            content_type="image/jpeg",
        )
        locked.display_width, locked.display_height = display.size
        _save(locked)
    return locked


def item_image_request_derivatives(*, image: ItemImage, user=None) -> Job:
    from jobs.queue import job_enqueue

    return job_enqueue(kind="heritage.derivatives", params={"image_id": image.pk}, user=user)


# --- training datasets ----------------------------------------------------------------------


def image_main_category(categories: Iterable[str]) -> str:
    """The most frequent category (ties in vocabulary order); "" when not annotated."""
    counts = Counter(categories)
    if not counts:
        return ""
    return max(counts, key=lambda c: (counts[c], -CATEGORY_ORDER.index(c)))


def caption_for(
    *, trigger_token: str, motif_labels: Iterable[str], categories: Iterable[str]
) -> str:
    """``trigger, motif terms…, category words…`` (each once, in a stable order)."""
    parts = [trigger_token.strip()] if trigger_token.strip() else []
    for label in motif_labels:
        if label and label not in parts:
            parts.append(label)
    for category in CATEGORY_ORDER:
        if category in set(categories):
            parts.append(CATEGORY_WORDS[category])
    return ", ".join(parts)


# The dataset caption template (issue 16): the curator's words first, then motif terms.
DEFAULT_CAPTION_TEMPLATE = "{trigger}, {caption}, {motifs}"
CAPTION_FIELDS = {
    "trigger": "the dataset's trigger token",
    "caption": "the image's caption, else its item's description, else its title",
    "title": "the item's title",
    "motifs": "the motif terms of the image's annotations",
    "categories": "the annotation categories as words (iconographic motif, ...)",
}


def caption_template_check(template: str) -> str:
    """The template if every {field} is known; a clear ValidationError otherwise."""
    import string

    template = (template or "").strip()
    if not template:
        raise ValidationError({"caption_template": "The caption template cannot be empty."})
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValidationError({"caption_template": f"Not a template: {exc}."}) from None
    unknown = sorted(set(fields) - set(CAPTION_FIELDS))
    if unknown or any(f == "" for f in fields):
        raise ValidationError(
            {
                "caption_template": f"Unknown field(s) {unknown or ['{}']}; use "
                + ", ".join("{" + f + "}" for f in CAPTION_FIELDS)
                + "."
            }
        )
    return template


def curator_text(image: ItemImage, lang: str = "en") -> str:
    """The curator's words for an image: its caption, else its item's description, else the
    item's title."""
    return (
        langmap_get(image.caption, lang)
        or langmap_get(image.item.description, lang)
        or langmap_get(image.item.title, lang)
    ).strip()


def caption_render(
    *,
    template: str,
    trigger_token: str,
    text: str = "",
    title: str = "",
    motif_labels: Iterable[str] = (),
    categories: Iterable[str] = (),
) -> str:
    """Fill the template; empty fields and the separators around them disappear, and each
    motif term appears once (not again when the curator's text already names it)."""
    motifs: list[str] = []
    for label in motif_labels:
        if label and label not in motifs and label.lower() not in text.lower():
            motifs.append(label)
    cats = set(categories)
    words = [CATEGORY_WORDS[c] for c in CATEGORY_ORDER if c in cats]
    filled = caption_template_check(template).format(
        trigger=trigger_token.strip(),
        caption=text.strip().rstrip("."),
        title=title.strip(),
        motifs=", ".join(motifs),
        categories=", ".join(words),
    )
    parts = [p.strip() for p in filled.split(",")]
    return re.sub(r"\s+", " ", ", ".join(p for p in parts if p)).strip()


def image_caption(image: ItemImage, *, template: str, trigger_token: str) -> str:
    """The caption of a whole catalogue image under a dataset's template."""
    annotations = list(image.annotations.all())
    return caption_render(
        template=template,
        trigger_token=trigger_token,
        text=curator_text(image),
        title=langmap_get(image.item.title, "en"),
        motif_labels=[
            langmap_get(motif.label, "en") or motif.slug
            for annotation in annotations
            for motif in annotation.motifs.all()
        ],
        categories=[a.category for a in annotations],
    )


def dataset_exclusions(
    images: Iterable[ItemImage],
    *,
    template: str,
    trigger_token: str,
    include_unpublished: bool = False,
    include_uncaptioned: bool = False,
) -> list[dict[str, Any]]:
    """The images a dataset leaves out unless asked, each named with why: unpublished (its
    item or collection) and un-captioned (no caption, description, title or motif term: the
    default caption would be the trigger alone)."""
    out = []
    for image in images:
        reason = ""
        if not include_unpublished and not (
            image.item.published and image.item.collection.published
        ):
            reason = "unpublished"
        elif not include_uncaptioned and not (
            curator_text(image) or any(a.motifs.all() for a in image.annotations.all())
        ):
            # Whatever the template: nothing the curator wrote or tagged describes it.
            reason = "no caption, description, title or motif term"
        if reason:
            out.append(
                {
                    "image": image.pk,
                    "accession_number": image.item.accession_number,
                    "reason": reason,
                }
            )
    return out


def split_stratified(
    strata: dict[int, str], *, validation_fraction: float, seed: int
) -> dict[int, str]:
    """Assign "train"/"validation" to keys so each stratum keeps the validation fraction.

    The total number of validation examples is round(N * fraction) (at least one when N >= 2
    and the fraction is positive), shared among strata by largest remainder; the picks inside
    a stratum are a seeded shuffle, so the split is reproducible.
    """
    keys = sorted(strata)
    total = len(keys)
    if total == 0 or validation_fraction <= 0:
        return dict.fromkeys(keys, "train")
    wanted = round(total * validation_fraction)
    if total >= 2:
        wanted = min(max(wanted, 1), total - 1)
    groups: dict[str, list[int]] = defaultdict(list)
    for key in keys:
        groups[strata[key]].append(key)
    quotas = {name: len(members) * wanted / total for name, members in groups.items()}
    counts = {name: math.floor(q) for name, q in quotas.items()}
    leftover = wanted - sum(counts.values())
    for name in sorted(quotas, key=lambda n: (-(quotas[n] - counts[n]), n))[:leftover]:
        counts[name] += 1
    rng = random.Random(seed)
    result: dict[int, str] = {}
    for name in sorted(groups):
        members = list(groups[name])
        rng.shuffle(members)
        for index, key in enumerate(members):
            result[key] = "validation" if index < counts[name] else "train"
    return result


def training_dataset_create(
    *,
    name: str,
    trigger_token: str = "[U]",  # noqa: S107 - not a password
    resolution: int = 512,
    collections: Iterable[str] = (),
    categories: Iterable[str] = (),
    motifs: Iterable[str] = (),
    items: Iterable[str] = (),
    validation_fraction: float = 0.1,
    seed: int = 0,
    description: str = "",
    bucketing: bool = True,
    region_examples: bool = False,
    region_margin: float = 0.1,
    tiles_per_image: int = 0,
    tile_grid: bool = False,
    masked_loss: bool = False,
    unmasked_weight: float = 0.1,
    caption_template: str = DEFAULT_CAPTION_TEMPLATE,
    include_unpublished: bool = False,
    include_uncaptioned: bool = False,
    user=None,
) -> TrainingDataset:
    """A draft (not frozen) dataset: matching images with captions and a stratified split.

    ``collections`` are slugs, ``motifs`` slugs, ``items`` accession numbers; filters combine
    with AND, each list with OR. Whole-image captions follow ``caption_template`` (default:
    trigger, the image's caption or its item's description, then motif terms) and can be
    edited per example until the dataset is frozen. Unpublished and un-captioned images are
    left out unless asked for (``include_unpublished``, ``include_uncaptioned``), each named
    in ``selection["excluded"]`` and ``build_notes``.

    Build options: ``bucketing`` crops each image at its aspect-ratio bucket (not a square);
    ``region_examples`` adds one example per annotated region (grown by ``region_margin`` of
    its size per side), captioned from its category and motifs; ``tiles_per_image`` cuts that
    many resolution-px crops at the original scale (``tile_grid``: the grid) from images at
    least twice the resolution on both sides; ``masked_loss`` makes training weigh annotated
    regions 1 and the rest ``unmasked_weight``. Regions, tiles and the whole image share the
    image's split. Images or regions no bucket can take are left out, each named in
    ``build_notes``; a selection that leaves nothing is refused.
    """
    collections, categories = list(collections), list(categories)
    motifs, items = list(motifs), list(items)
    bad = set(categories) - set(CATEGORY_ORDER)
    if bad:
        raise ValidationError({"categories": f"Unknown categories: {sorted(bad)}."})
    if not 0 <= validation_fraction < 1:
        raise ValidationError({"validation_fraction": "Use a fraction from 0 to below 1."})
    if resolution < 8 or resolution > 2048 or resolution % 8:
        raise ValidationError({"resolution": "Use a multiple of 8 between 8 and 2048."})
    if not 0 <= region_margin <= 1:
        raise ValidationError({"region_margin": "Use a fraction of the region from 0 to 1."})
    if not 0 <= unmasked_weight <= 1:
        raise ValidationError({"unmasked_weight": "Use a weight from 0 to 1."})
    if not 0 <= tiles_per_image <= 64:
        raise ValidationError({"tiles_per_image": "Use from 0 (no tiles) to 64 tiles per image."})
    images = dataset_selection_images(
        collections=collections, categories=categories, motifs=motifs, items=items
    ).select_related("item")
    images = list(
        images.select_related("item__collection")
        .prefetch_related("annotations__motifs")
        .order_by("pk")
    )
    if not images:
        raise ValidationError("No catalogue images match this selection.")
    caption_template = caption_template_check(caption_template)
    excluded = dataset_exclusions(
        images,
        template=caption_template,
        trigger_token=trigger_token,
        include_unpublished=include_unpublished,
        include_uncaptioned=include_uncaptioned,
    )
    if excluded:
        left_out = {e["image"] for e in excluded}
        if len(left_out) == len(images):
            reasons = sorted({e["reason"] for e in excluded})
            raise ValidationError(
                f"All {len(images)} matching images are left out ({'; '.join(reasons)}); "
                "ask for unpublished or un-captioned images to include them."
            )
        images = [image for image in images if image.pk not in left_out]
    options = {
        "bucketing": bucketing,
        "region_examples": region_examples,
        "region_margin": region_margin,
        "tiles_per_image": tiles_per_image,
        "tile_grid": tile_grid,
        "masked_loss": masked_loss,
        "unmasked_weight": unmasked_weight,
    }
    rows_by_image, notes = _dataset_rows(
        images,
        trigger_token=trigger_token,
        resolution=resolution,
        seed=seed,
        caption_template=caption_template,
        **options,
    )
    notes = [
        f"Left out ({e['reason']}): {e['accession_number']} image {e['image']}" for e in excluded
    ] + notes
    if not rows_by_image:
        raise ValidationError(
            "No image of this selection can be used for training: " + " ".join(notes)
        )
    with transaction.atomic():
        latest = TrainingDataset.objects.filter(name=name).aggregate(v=Max("version"))["v"]
        dataset = TrainingDataset(
            name=name,
            version=(latest or 0) + 1,
            trigger_token=trigger_token,
            resolution=resolution,
            validation_fraction=validation_fraction,
            seed=seed,
            description=description,
            selection={
                "collections": collections,
                "categories": categories,
                "motifs": motifs,
                "items": items,
                "include_unpublished": include_unpublished,
                "include_uncaptioned": include_uncaptioned,
                "excluded": excluded,
            },
            caption_template=caption_template,
            build_notes=notes,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            **options,
        )
        _save(dataset)
        # The split is per image: its regions and tiles never cross into the other split.
        image_ids = sorted(rows_by_image)
        splits = split_stratified(
            {i: rows_by_image[pk][0].category for i, pk in enumerate(image_ids)},
            validation_fraction=validation_fraction,
            seed=seed,
        )
        rows = []
        for i, pk in enumerate(image_ids):
            for row in rows_by_image[pk]:
                row.dataset = dataset
                row.split = splits[i]
                row.full_clean(exclude=["dataset", "image", "annotation"])
                rows.append(row)
        TrainingExample.objects.bulk_create(rows)
    return dataset


def _dataset_rows(
    images: list[ItemImage],
    *,
    trigger_token: str,
    resolution: int,
    seed: int,
    bucketing: bool,
    region_examples: bool,
    region_margin: float,
    tiles_per_image: int,
    tile_grid: bool,
    masked_loss: bool,
    unmasked_weight: float,
    caption_template: str = DEFAULT_CAPTION_TEMPLATE,
) -> tuple[dict[int, list[TrainingExample]], list[str]]:
    """The unsaved examples of each image (whole, regions, tiles) and a note for everything
    left out. Nothing is written."""
    rows_by_image: dict[int, list[TrainingExample]] = {}
    notes: list[str] = []
    for image in images:
        name = f"{image.item.accession_number} ({image.original_filename or f'image {image.pk}'})"
        annotations = list(image.annotations.all())
        cats = [a.category for a in annotations]
        labels = []
        for annotation in annotations:
            for motif in annotation.motifs.all():
                labels.append(langmap_get(motif.label, "en") or motif.slug)
        category = image_main_category(cats)
        caption = image_caption(image, template=caption_template, trigger_token=trigger_token)
        rows: list[TrainingExample] = []

        def usable(width: int, height: int, what: str) -> bool:
            if not bucketing:
                return True
            try:
                bucket_plan(width, height, resolution=resolution, name=what)
            except ValueError as error:
                notes.append(f"Left out: {error}")
                return False
            return True

        if usable(image.width, image.height, name):
            rows.append(TrainingExample(image=image, caption=caption, category=category, part=0))
        part = 1
        if region_examples:
            for annotation in annotations:
                if annotation.region is None:
                    continue
                box = region_box(
                    annotation.region, (image.width, image.height), margin=region_margin
                )
                what = f"{name} region of annotation {annotation.pk}"
                if usable(box[2], box[3], what):
                    motif_labels = [
                        langmap_get(m.label, "en") or m.slug for m in annotation.motifs.all()
                    ]
                    rows.append(
                        TrainingExample(
                            image=image,
                            kind=TrainingExample.Kind.REGION,
                            part=part,
                            annotation=annotation,
                            box=list(box),
                            caption=caption_for(
                                trigger_token=trigger_token,
                                motif_labels=motif_labels,
                                categories=[annotation.category],
                            ),
                            category=category,
                        )
                    )
                    part += 1
        if tiles_per_image and min(image.width, image.height) >= 2 * resolution:
            for box in tile_boxes(
                (image.width, image.height),
                tile=resolution,
                count=tiles_per_image,
                seed=seed + image.pk,
                grid=tile_grid,
            ):
                rows.append(
                    TrainingExample(
                        image=image,
                        kind=TrainingExample.Kind.TILE,
                        part=part,
                        box=list(box),
                        caption=caption,
                        category=category,
                    )
                )
                part += 1
        if rows:
            rows_by_image[image.pk] = rows
    return rows_by_image, notes


def example_plan(example: TrainingExample):
    """The bucket plan of an example and its crop box in the original's pixels
    (``heritage.bucketing.example_crop``); ValueError when no bucket can take it."""
    return example_crop(
        image_size=(example.image.width, example.image.height),
        box=example.box,
        resolution=example.dataset.resolution,
        bucketing=example.dataset.bucketing,
        name=example.image.item.accession_number,
    )


def _ensure_draft(dataset: TrainingDataset) -> None:
    if dataset.frozen:
        raise ValidationError(
            f"Dataset {dataset} is frozen and never changes; make a new version to edit it."
        )
    if dataset.freezing:
        raise ValidationError(
            f"Dataset {dataset} is being frozen (job {dataset.freeze_job_id}); wait for the job."
        )


def training_example_update(
    *, example: TrainingExample, caption: str | None = None, split: str | None = None
) -> TrainingExample:
    with transaction.atomic():
        dataset = TrainingDataset.objects.select_for_update().get(pk=example.dataset_id)
        _ensure_draft(dataset)
        changed = []
        if caption is not None:
            if not caption.strip():
                raise ValidationError({"caption": "A caption cannot be empty."})
            example.caption = caption.strip()
            changed.append("caption")
        if split is not None:
            example.split = split
            changed.append("split")
        example.full_clean()
        # Only what was sent: an edit of the caption never reverts a concurrent split change.
        example.save(update_fields=changed or None)
    return example


def training_dataset_recaption(
    *, dataset: TrainingDataset, caption_template: str
) -> TrainingDataset:
    """Apply a caption template to every whole-image example of a draft (edited captions are
    replaced too; region and tile examples keep theirs)."""
    caption_template = caption_template_check(caption_template)
    with transaction.atomic():
        dataset = TrainingDataset.objects.select_for_update().get(pk=dataset.pk)
        _ensure_draft(dataset)
        dataset.caption_template = caption_template
        _save(dataset)
        examples = dataset.examples.filter(kind=TrainingExample.Kind.WHOLE).select_related(
            "image__item"
        )
        for example in examples.prefetch_related("image__annotations__motifs"):
            caption = image_caption(
                example.image, template=caption_template, trigger_token=dataset.trigger_token
            )
            # A template that leaves nothing keeps the trigger: a caption is never empty.
            example.caption = caption or dataset.trigger_token or "image"
            example.save(update_fields=["caption"])
    return dataset


def training_example_remove(*, example: TrainingExample) -> None:
    with transaction.atomic():
        dataset = TrainingDataset.objects.select_for_update().get(pk=example.dataset_id)
        _ensure_draft(dataset)
        example.delete()


def dataset_content_hash(dataset: TrainingDataset) -> str:
    """sha256 over the settings and every example (original + crop checksums, caption, split)."""
    examples = dataset.examples.select_related("image__original", "crop").order_by(
        "image_id", "part"
    )
    return dataset_hash_of(
        trigger_token=dataset.trigger_token,
        resolution=dataset.resolution,
        bucketing=dataset.bucketing,
        masked_loss=dataset.masked_loss,
        unmasked_weight=dataset.unmasked_weight,
        examples=[
            {
                "original_sha256": ex.image.original.sha256,
                "crop_sha256": ex.crop.sha256 if ex.crop_id else "",
                "caption": ex.caption,
                "split": ex.split,
                "kind": ex.kind,
                "box": ex.box,
                "mask_regions": ex.mask_regions,
            }
            for ex in examples
        ],
    )


def dataset_hash_of(
    *,
    trigger_token: str,
    resolution: int,
    bucketing: bool,
    masked_loss: bool,
    unmasked_weight: float,
    examples: list[dict[str, Any]],
) -> str:
    """The content hash from plain values (examples ordered by image id, then part): what
    ``dataset_content_hash`` stores and a bag check recomputes from a bag's records."""
    manifest: dict[str, Any] = {
        "trigger_token": trigger_token,
        "resolution": resolution,
        "examples": [
            [ex["original_sha256"], ex["crop_sha256"], ex["caption"], ex["split"]]
            # regions and tiles (and masks) add their own fields; whole images hash as before
            + ([ex["kind"], ex["box"]] if ex["kind"] != TrainingExample.Kind.WHOLE else [])
            + ([ex["mask_regions"]] if masked_loss else [])
            for ex in examples
        ],
    }
    options = {
        "bucketing": bucketing,
        "masked_loss": masked_loss,
        "unmasked_weight": unmasked_weight,
    }
    if options != {"bucketing": True, "masked_loss": False, "unmasked_weight": 0.1}:
        manifest["options"] = options
    blob = json.dumps(manifest, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _freeze_snapshot(dataset: TrainingDataset) -> list[tuple[int, int, int | None]]:
    return list(dataset.examples.order_by("pk").values_list("pk", "image_id", "crop_id"))


def training_dataset_freeze(*, dataset: TrainingDataset, progress=None) -> TrainingDataset:
    """Make the training crops (each example at its bucket, or the centred square without
    bucketing; regions and tiles from their box), hash, and freeze for good.

    No transaction spans the crop loop: each crop is computed outside any transaction and
    written in a short one; then one short transaction locks the dataset, re-checks that its
    examples and resolution are still the ones cropped, and flips ``frozen``.
    ``progress(fraction, message)`` is called after each crop (the job's progress).
    """
    dataset = TrainingDataset.objects.get(pk=dataset.pk)
    if dataset.frozen:
        return dataset
    resolution = dataset.resolution
    examples = list(
        dataset.examples.select_related("image__original", "image__item", "dataset")
        .prefetch_related("image__annotations")
        .order_by("pk")
    )
    if not examples:
        raise ValidationError("A dataset needs at least one example to be frozen.")
    originals: dict[int, Any] = {}  # an image's regions and tiles decode it once
    for index, example in enumerate(examples):
        if example.image_id not in originals:
            originals = {
                example.image_id: imaging.open_rgb(stored_file_read(example.image.original))
            }
        original = originals[example.image_id]
        try:
            plan, (left, top, width, height) = example_plan(example)
        except ValueError as error:
            raise ValidationError(str(error)) from error
        if dataset.bucketing or example.box:
            crop = original.resize(
                plan.bucket, Image.Resampling.LANCZOS, box=(left, top, left + width, top + height)
            )
        else:  # the centred square, exactly as before buckets
            crop = imaging.square_crop(original, resolution)
        regions = [a.region for a in example.image.annotations.all() if a.region is not None]
        mask = (
            regions_in_crop(regions, (left, top, width, height), crop.size)
            if dataset.masked_loss
            else []
        )
        content = imaging.encode_png(crop)
        suffix = f"-{example.part}" if example.part else ""
        with atomic_with_files():
            stored = stored_file_save(
                name=f"heritage/datasets/{dataset.pk}/{example.image_id}{suffix}-{resolution}.png",
                content=content,
                content_type="image/png",
            )
            TrainingExample.objects.filter(pk=example.pk).update(
                crop=stored,
                bucket=plan.label,
                crop_box=[round(v, 2) for v in (left, top, width, height)],
                mask_regions=mask,
            )
        example.crop = stored
        if progress is not None:
            progress((index + 1) / len(examples), f"crop {index + 1} of {len(examples)}")
    cropped = [(ex.pk, ex.image_id, ex.crop_id) for ex in examples]
    with transaction.atomic():
        locked = TrainingDataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.frozen:
            return locked
        if locked.resolution != resolution or _freeze_snapshot(locked) != cropped:
            raise ValidationError(
                f"Dataset {locked} changed while it was being frozen (examples or resolution); "
                "it was not frozen. Freeze it again."
            )
        locked.content_hash = dataset_content_hash(locked)
        locked.frozen = True
        locked.frozen_at = timezone.now()
        _save(locked)
    return locked


def training_dataset_request_freeze(*, dataset: TrainingDataset, user=None) -> Job:
    """Queue ``heritage.dataset_freeze`` (crops, hash, freeze) and return its job; the dataset
    reads "freezing" until it ends. Asked again while it runs: the same job."""
    from jobs.queue import job_enqueue

    with transaction.atomic():
        locked = TrainingDataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.freezing:
            return locked.freeze_job
        _ensure_draft(locked)
        if not locked.examples.exists():
            raise ValidationError("A dataset needs at least one example to be frozen.")
        job = job_enqueue(
            kind="heritage.dataset_freeze", params={"dataset_id": locked.pk}, user=user
        )
        TrainingDataset.objects.filter(pk=locked.pk).update(freeze_job=job)
    dataset.freeze_job = job
    return job


def training_dataset_new_version(*, dataset: TrainingDataset, user=None) -> TrainingDataset:
    """A draft copy (version + 1) of a dataset, its examples and captions, to edit and refreeze."""
    with transaction.atomic():
        latest = TrainingDataset.objects.filter(name=dataset.name).aggregate(v=Max("version"))["v"]
        draft = TrainingDataset(
            name=dataset.name,
            version=latest + 1,
            description=dataset.description,
            trigger_token=dataset.trigger_token,
            resolution=dataset.resolution,
            validation_fraction=dataset.validation_fraction,
            seed=dataset.seed,
            selection=dataset.selection,
            parent=dataset,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            build_notes=dataset.build_notes,
            caption_template=dataset.caption_template,
            **{name: getattr(dataset, name) for name in DATASET_OPTIONS},
        )
        _save(draft)
        TrainingExample.objects.bulk_create(
            TrainingExample(
                dataset=draft,
                image_id=ex.image_id,
                caption=ex.caption,
                split=ex.split,
                category=ex.category,
                kind=ex.kind,
                part=ex.part,
                annotation_id=ex.annotation_id,
                box=ex.box,
            )
            for ex in dataset.examples.order_by("pk")
        )
    return draft


def training_dataset_update(*, dataset: TrainingDataset, **fields: Any) -> TrainingDataset:
    allowed = {"description", "trigger_token", "resolution", "name"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"cannot change {sorted(unknown)} of a dataset")
    with transaction.atomic():
        locked = TrainingDataset.objects.select_for_update().get(pk=dataset.pk)
        _ensure_draft(locked)
        for name, value in fields.items():
            setattr(locked, name, value)
        _save(locked)
    return locked


def slug_for(text: str) -> str:
    return slugify(text)[:100] or "term"
