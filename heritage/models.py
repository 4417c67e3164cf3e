"""Models of the heritage catalogue.

Human-readable text is a JSON language map ``{"en": ..., "zh": ..., "ug": ...}`` (IIIF style).
Files live in ``archives.StoredFile`` (checksummed); images keep their original byte for byte
and point to derivatives made by the ``heritage.derivatives`` job.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

LANGS = ("en", "zh", "ug")


def validate_langmap(value) -> None:
    """A language map: {lang: str}; empty allowed."""
    if not isinstance(value, dict):
        raise ValidationError(
            'Expected a language map like {"en": "...", "zh": "...", "ug": "..."}.'
        )
    for key, text in value.items():
        if not isinstance(key, str) or not (2 <= len(key) <= 10):
            raise ValidationError(f"Invalid language code {key!r}.")
        if not isinstance(text, str):
            raise ValidationError(f"Text for language {key!r} must be a string.")


def langmap_get(value: dict | None, lang: str = "en") -> str:
    """The text in ``lang``, falling back to English, then to any language."""
    if not value:
        return ""
    if value.get(lang):
        return value[lang]
    if value.get("en"):
        return value["en"]
    return next((text for text in value.values() if text), "")


def LangMapField(**kwargs) -> models.JSONField:
    kwargs.setdefault("default", dict)
    kwargs.setdefault("blank", True)
    return models.JSONField(validators=[validate_langmap], **kwargs)


class Versioned(models.Model):
    """A record curators edit: ``version`` goes up by one on every write.

    Writes compare and bump it in one conditional UPDATE (heritage.services), the API's ETag
    and If-Match carry it, and the admin form posts it back, so a write made from a stale copy
    is refused (412 / a form error) instead of silently undoing someone else's change.
    """

    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        abstract = True


class Collection(Versioned):
    slug = models.SlugField(max_length=100, unique=True)
    title = LangMapField()
    description = LangMapField()
    published = models.BooleanField(default=False, db_index=True)
    position = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "slug"]

    def __str__(self) -> str:
        return langmap_get(self.title) or self.slug

    def title_in(self, lang: str) -> str:
        return langmap_get(self.title, lang) or self.slug


class HeritageItem(Versioned):
    collection = models.ForeignKey(Collection, on_delete=models.PROTECT, related_name="items")
    accession_number = models.CharField(max_length=100, unique=True)
    title = LangMapField()
    description = LangMapField()
    period = models.CharField(max_length=200, blank=True, help_text="Period or date.")
    place = models.CharField(max_length=200, blank=True)
    provenance = models.TextField(blank=True)
    rights = models.URLField(
        max_length=300,
        blank=True,
        help_text="A rightsstatements.org or creativecommons.org URI.",
    )
    credit_line = LangMapField()
    published = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["accession_number"]

    def __str__(self) -> str:
        return f"{self.accession_number} {langmap_get(self.title)}".strip()

    def clean(self) -> None:
        if self.rights and not self.rights.startswith(
            (
                "http://rightsstatements.org/",
                "https://rightsstatements.org/",
                "http://creativecommons.org/",
                "https://creativecommons.org/",
            )
        ):
            raise ValidationError(
                {"rights": "Use a rightsstatements.org or creativecommons.org URI."}
            )

    def title_in(self, lang: str) -> str:
        return langmap_get(self.title, lang) or self.accession_number

    @property
    def primary_image(self) -> ItemImage | None:
        # Works on prefetched images without another query.
        images = list(self.images.all())
        for image in images:
            if image.is_primary:
                return image
        return images[0] if images else None


class ItemImage(Versioned):
    item = models.ForeignKey(HeritageItem, on_delete=models.CASCADE, related_name="images")
    original = models.ForeignKey("archives.StoredFile", on_delete=models.PROTECT, related_name="+")
    original_filename = models.CharField(max_length=255, blank=True)
    original_format = models.CharField(max_length=20, blank=True, help_text="Pillow format.")
    original_mode = models.CharField(max_length=20, blank=True, help_text="Pillow colour mode.")
    width = models.PositiveIntegerField(help_text="Width of the original (after EXIF rotation).")
    height = models.PositiveIntegerField()
    thumbnail = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    thumbnail_width = models.PositiveIntegerField(null=True, blank=True)
    thumbnail_height = models.PositiveIntegerField(null=True, blank=True)
    display = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    display_width = models.PositiveIntegerField(null=True, blank=True)
    display_height = models.PositiveIntegerField(null=True, blank=True)
    is_primary = models.BooleanField(default=False)
    position = models.PositiveIntegerField(default=0)
    caption = LangMapField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id", "-is_primary", "position", "id"]

    def __str__(self) -> str:
        return f"{self.item.accession_number} image {self.pk}"

    @property
    def published(self) -> bool:
        return self.item.published and self.item.collection.published

    @property
    def derivatives_ready(self) -> bool:
        return self.thumbnail_id is not None and self.display_id is not None

    def iiif_url(self, width: int | None, height: int | None) -> str | None:
        if not width or not height:
            return None
        return f"/iiif/image/{self.pk}/full/{width},{height}/0/default.jpg"

    @property
    def thumbnail_url(self) -> str | None:
        return self.iiif_url(self.thumbnail_width, self.thumbnail_height)

    @property
    def display_url(self) -> str | None:
        return self.iiif_url(self.display_width, self.display_height)

    def iiif_sizes(self) -> list[tuple[int, int]]:
        """Pre-rendered sizes (width, height), smallest first, for IIIF Image API level0."""
        sizes = []
        if self.thumbnail_id and self.thumbnail_width:
            sizes.append((self.thumbnail_width, self.thumbnail_height))
        if self.display_id and self.display_width:
            sizes.append((self.display_width, self.display_height))
        return sorted(set(sizes))


class MotifTerm(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    label = LangMapField()

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def label_in(self, lang: str) -> str:
        return langmap_get(self.label, lang) or self.slug


class SemioticAnnotation(Versioned):
    """A reading of an image after Peirce: icon, index (directional) or symbol."""

    class Category(models.TextChoices):
        ICONOGRAPHIC = "iconographic", "Iconographic"
        DIRECTIONAL = "directional", "Directional"
        CULTURAL_SEMIOTIC = "cultural_semiotic", "Cultural-semiotic"

    image = models.ForeignKey(ItemImage, on_delete=models.CASCADE, related_name="annotations")
    category = models.CharField(max_length=30, choices=Category.choices, db_index=True)
    motifs = models.ManyToManyField(MotifTerm, blank=True, related_name="annotations")
    region_x = models.PositiveIntegerField(null=True, blank=True)
    region_y = models.PositiveIntegerField(null=True, blank=True)
    region_w = models.PositiveIntegerField(null=True, blank=True)
    region_h = models.PositiveIntegerField(null=True, blank=True)
    meaning = LangMapField()
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    annotated_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "id"]

    def __str__(self) -> str:
        return f"{self.get_category_display()} on {self.image_id}"

    @property
    def region(self) -> tuple[int, int, int, int] | None:
        if None in (self.region_x, self.region_y, self.region_w, self.region_h):
            return None
        return (self.region_x, self.region_y, self.region_w, self.region_h)

    def clean(self) -> None:
        parts = (self.region_x, self.region_y, self.region_w, self.region_h)
        if any(p is not None for p in parts) and any(p is None for p in parts):
            raise ValidationError("A region needs all of x, y, w and h (or none).")
        if self.region is not None:
            if self.region_w == 0 or self.region_h == 0:
                raise ValidationError("A region must have a positive width and height.")
            if self.image_id and (
                self.region_x + self.region_w > self.image.width
                or self.region_y + self.region_h > self.image.height
            ):
                raise ValidationError(
                    f"The region lies outside the image ({self.image.width}x{self.image.height})."
                )


class GazetteerPassage(Versioned):
    source_work = models.CharField(max_length=300)
    section = models.CharField(
        max_length=200, blank=True, help_text="Volume/section, e.g. Geography."
    )
    original_text = models.TextField(help_text="Classical Chinese original.")
    modern_paraphrase = models.TextField(blank=True)
    english_translation = models.TextField(blank=True)
    # Readings in the kiosk's other languages (a language map, e.g. {"ug": "..."}); English and
    # the modern Chinese paraphrase keep their own fields.
    translations = LangMapField(blank=True)
    prompt_draft = models.TextField(blank=True)
    approved_prompt = models.TextField(blank=True)
    items = models.ManyToManyField(HeritageItem, blank=True, related_name="passages")
    published = models.BooleanField(default=False, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["source_work", "section", "id"]

    def __str__(self) -> str:
        return f"{self.source_work} · {self.section} · {self.original_text[:20]}"


class TrainingDataset(models.Model):
    """A named, versioned snapshot of images + captions. Frozen datasets never change."""

    name = models.CharField(max_length=200)
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True)
    frozen = models.BooleanField(default=False)
    frozen_at = models.DateTimeField(null=True, blank=True)
    trigger_token = models.CharField(max_length=50, default="[U]")
    resolution = models.PositiveIntegerField(default=512)
    validation_fraction = models.FloatField(default=0.1)
    seed = models.IntegerField(default=0)
    selection = models.JSONField(
        default=dict, blank=True, help_text="How the images were chosen (collections, categories…)."
    )
    content_hash = models.CharField(max_length=64, blank=True)
    # Whole-image captions: {trigger}, {caption} (image caption, else item description, else
    # title), {title}, {motifs}, {categories} (heritage.services.caption_render).
    caption_template = models.CharField(max_length=300, default="{trigger}, {caption}, {motifs}")
    # Build options (issue 20). Crops at each image's aspect-ratio bucket, not a square.
    bucketing = models.BooleanField(default=True)
    # One more example per annotated region, grown by region_margin of its size per side.
    region_examples = models.BooleanField(default=False)
    region_margin = models.FloatField(default=0.1)
    # Textiles: this many resolution-px crops at the original scale from each image at least
    # twice the resolution on both sides (seeded positions, or the grid).
    tiles_per_image = models.PositiveIntegerField(default=0)
    tile_grid = models.BooleanField(default=False)
    # Masked loss: annotated regions weigh 1, the rest unmasked_weight.
    masked_loss = models.BooleanField(default=False)
    unmasked_weight = models.FloatField(default=0.1)
    # Images and regions left out when the dataset was built, each naming its image.
    build_notes = models.JSONField(default=list, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    # The newest heritage.dataset_freeze job: while it is queued or running the dataset is
    # "freezing" (edits refused); its progress and any failure are read from it.
    freeze_job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "version"], name="heritage_dataset_name_version"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}{' (frozen)' if self.frozen else ''}"

    @property
    def freezing(self) -> bool:
        return bool(self.freeze_job_id) and not self.frozen and not self.freeze_job.is_finished

    @property
    def state(self) -> str:
        """draft, freezing (its freeze job queued or running) or frozen."""
        return "frozen" if self.frozen else "freezing" if self.freezing else "draft"


class TrainingExample(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train"
        VALIDATION = "validation"

    class Kind(models.TextChoices):
        WHOLE = "whole", "whole image"
        REGION = "region", "annotated region"
        TILE = "tile", "tile"

    dataset = models.ForeignKey(TrainingDataset, on_delete=models.CASCADE, related_name="examples")
    image = models.ForeignKey(ItemImage, on_delete=models.PROTECT, related_name="training_examples")
    crop = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    caption = models.TextField()
    split = models.CharField(max_length=20, choices=Split.choices, default=Split.TRAIN)
    category = models.CharField(
        max_length=30,
        blank=True,
        help_text="Stratum used for the split (main annotation category).",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.WHOLE)
    # 0 for the whole image; regions and tiles of one image count from 1.
    part = models.PositiveIntegerField(default=0)
    annotation = models.ForeignKey(
        SemioticAnnotation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # [x, y, w, h] in the original's pixels; empty: the whole image.
    box = models.JSONField(default=list, blank=True)
    # Set when frozen: the bucket ("WxH") and the crop box ([x, y, w, h] in the original's
    # pixels) the crop file was made from, and the annotated regions ([x, y, w, h] in the
    # crop file's pixels) that masked loss weighs fully.
    bucket = models.CharField(max_length=20, blank=True)
    crop_box = models.JSONField(default=list, blank=True)
    mask_regions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["dataset_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "image", "part"], name="heritage_example_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dataset} #{self.image_id}: {self.caption[:40]}"

    @property
    def training_crop(self) -> dict[str, Any]:
        """{"bucket": "WxH", "crop": [x, y, w, h] in the original's pixels} as frozen, or as
        the freeze will make it; {"error": why} when no bucket can take it."""
        if self.bucket:
            return {"bucket": self.bucket, "crop": [round(v) for v in self.crop_box]}
        from heritage.bucketing import example_crop

        try:
            plan, crop = example_crop(
                image_size=(self.image.width, self.image.height),
                box=self.box,
                resolution=self.dataset.resolution,
                bucketing=self.dataset.bucketing,
                name=self.image.item.accession_number,
            )
        except ValueError as error:
            return {"error": str(error)}
        return {"bucket": plan.label, "crop": [round(v) for v in crop]}


class CatalogueState(models.Model):
    """One row whose ``version`` goes up on every catalogue write (see heritage/signals.py).

    Public API responses are cached under the version, so any change is seen at once by every
    process without a shared cache.
    """

    version = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"catalogue version {self.version}"
