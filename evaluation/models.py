"""Models of the evaluation app: expert panels, blind rating studies, ratings, metric results.

Blindness lives in the data: an expert reaches an item only through its ``Assignment`` (their own
randomised position) and its opaque ``StudyItem.token``; the image served is ``StudyItem.blind``,
a re-encoded PNG without text chunks or EXIF, stored under a random name. ``condition`` and the
link to the generated image are read only by curators' reports.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q


def new_token() -> str:
    return secrets.token_urlsafe(18)  # 24 url-safe characters, 144 random bits


class Dimension(models.TextChoices):
    # The four dimensions of 001_465742bc70709bdb's expert scoring.
    STYLE = "style_consistency", "Style consistency"
    IMAGE_TEXT = "image_text_match", "Image-text match"
    DETAIL = "detail_richness", "Detail richness"
    BEAUTY = "artistic_beauty", "Artistic beauty"


class Panel(models.Model):
    """A named set of experts (users in the "expert" group)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="evaluation_panels")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Study(models.Model):
    """Items to rate (generated images grouped by prompt and condition, optional references)."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    class AssignmentMode(models.TextChoices):
        ALL = "all", "every expert rates every item"
        BALANCED = "balanced", "balanced subset, at least 3 raters per item"

    # Title and description are for curators (they may name the models); experts see
    # ``expert_label`` and ``instructions`` only.
    title = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    instructions = models.TextField(
        blank=True, help_text="Shown to experts: must not name models or conditions."
    )
    panel = models.ForeignKey(Panel, on_delete=models.PROTECT, related_name="studies")
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    assignment_mode = models.CharField(
        max_length=10, choices=AssignmentMode.choices, default=AssignmentMode.ALL
    )
    raters_per_item = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(3)], help_text="Balanced mode only."
    )
    reference_condition = models.CharField(
        max_length=50, default="base", help_text="The condition others are compared with."
    )
    seed = models.BigIntegerField(help_text="Seed of the per-expert random order.")
    # Filled by the metrics job: what images no model drew score against the same references
    # (services.study_reference_rows), to read the per-condition metrics by.
    metric_references = models.JSONField(default=list, blank=True)
    # Filled by the metrics job: the distribution protocol per run and condition (sliced
    # Wasserstein distance over patches, colour histogram distance, the KID/CLIP slot).
    metric_distribution = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.title

    @property
    def expert_label(self) -> str:
        return f"Rating study {self.pk}"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


class StudyItem(models.Model):
    """One image in a study: a generated image or a real reference (calibration) image."""

    class Kind(models.TextChoices):
        GENERATED = "generated"
        REFERENCE = "reference"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    token = models.CharField(max_length=40, unique=True, default=new_token, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    generated = models.ForeignKey(
        "generation.GeneratedImage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="study_items",
    )
    reference = models.ForeignKey(
        "heritage.ItemImage",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="study_items",
    )
    # Hidden from experts: "base", "lora", "reference" (or another label, e.g. a checkpoint;
    # "lora:<run id>" when the study compares more than one LoRA, so they are never pooled).
    condition = models.CharField(max_length=50, db_index=True)
    # What pairs conditions: the normalised prompt text (references: "reference:<image id>").
    group = models.CharField(max_length=300, db_index=True)
    # Shown to experts for image-text match; identical for every condition of a group.
    prompt = models.TextField(blank=True)
    passage = models.ForeignKey(
        "heritage.GazetteerPassage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # The stripped copy experts see (random storage name, no text chunks, no EXIF).
    blind = models.ForeignKey("archives.StoredFile", on_delete=models.PROTECT, related_name="+")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Calibration items: the answer a careful expert gives, {dimension: [lowest, highest]}
    # (a real heritage image is in the heritage style); a rater outside it fails the check.
    expected = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["study_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="generated", generated__isnull=False, reference__isnull=True)
                    | Q(kind="reference", generated__isnull=True, reference__isnull=False)
                ),
                name="evaluation_item_one_source",
            ),
            models.UniqueConstraint(
                fields=["study", "generated"],
                condition=Q(generated__isnull=False),
                name="evaluation_item_generated_once",
            ),
            models.UniqueConstraint(
                fields=["study", "reference"],
                condition=Q(reference__isnull=False),
                name="evaluation_item_reference_once",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.study} item {self.pk}"


class Assignment(models.Model):
    """An expert's item at their own randomised position in the study."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="assignments")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="evaluation_assignments"
    )
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="assignments")
    position = models.PositiveIntegerField(help_text="1-based, in this expert's order.")

    class Meta:
        ordering = ["study_id", "expert_id", "position"]
        constraints = [
            models.UniqueConstraint(fields=["expert", "item"], name="evaluation_assignment_once"),
            models.UniqueConstraint(
                fields=["study", "expert", "position"], name="evaluation_assignment_position"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert} #{self.position} in {self.study}"


class Rating(models.Model):
    """One expert's score (1-5) of one item on one dimension; the database keeps one."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="ratings")
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="ratings")
    expert = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="evaluation_ratings"
    )
    dimension = models.CharField(max_length=30, choices=Dimension.choices)
    score = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)]
    )
    comment = models.TextField(blank=True, max_length=2000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["study_id", "item_id", "expert_id", "dimension"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "expert", "dimension"], name="evaluation_rating_once"
            ),
            models.CheckConstraint(
                condition=Q(score__gte=1, score__lte=5), name="evaluation_rating_score_1_5"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.expert} {self.dimension}={self.score} on {self.item_id}"


class StudyReference(models.Model):
    """A real image a study's automated metrics compare generated images with, declared by the
    curator (default: the held-out validation images of the compared runs' datasets)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="references")
    image = models.ForeignKey(
        "heritage.ItemImage", on_delete=models.PROTECT, related_name="study_references"
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study_id", "image_id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "image"], name="evaluation_reference_once")
        ]

    def __str__(self) -> str:
        return f"{self.study} reference {self.image_id}"


class RatingChange(models.Model):
    """Every write that changed a rating: who, when, old -> new (old empty: the first score)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rating_changes")
    item = models.ForeignKey(StudyItem, on_delete=models.CASCADE, related_name="rating_changes")
    expert = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    dimension = models.CharField(max_length=30, choices=Dimension.choices)
    old_score = models.PositiveSmallIntegerField(null=True, blank=True)
    new_score = models.PositiveSmallIntegerField()
    old_comment = models.TextField(blank=True)
    new_comment = models.TextField(blank=True)
    changed_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["study_id", "changed_at", "id"]

    def __str__(self) -> str:
        return f"{self.expert} {self.dimension}: {self.old_score} -> {self.new_score}"


class MetricResult(models.Model):
    """MSE / PSNR / SSIM of one generated image against one reference image, under a protocol
    (reproduction: a training image the image was made for; held-out: a reference outside
    the compared runs' training splits), for one run (never pooled across runs)."""

    class Protocol(models.TextChoices):
        REPRODUCTION = "reproduction"
        HELD_OUT = "held_out", "held-out"

    study = models.ForeignKey(
        Study, null=True, blank=True, on_delete=models.CASCADE, related_name="metric_results"
    )
    generated = models.ForeignKey(
        "generation.GeneratedImage", on_delete=models.CASCADE, related_name="metric_results"
    )
    reference = models.ForeignKey(
        "heritage.ItemImage", on_delete=models.CASCADE, related_name="metric_results"
    )
    condition = models.CharField(max_length=50)
    protocol = models.CharField(
        max_length=20, choices=Protocol.choices, default=Protocol.HELD_OUT, db_index=True
    )
    run = models.ForeignKey(
        "generation.TrainingRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The run whose request made the image (its base images too); empty: none.",
    )
    mse = models.FloatField()
    psnr = models.FloatField(null=True, blank=True, help_text="Empty when identical (infinite).")
    ssim = models.FloatField()
    identical = models.BooleanField(default=False)
    width = models.PositiveIntegerField(help_text="Size both images were compared at.")
    height = models.PositiveIntegerField()
    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["generated_id", "reference_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["study", "generated", "reference"], name="evaluation_metric_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.generated_id} vs {self.reference_id}: SSIM {self.ssim:.3f}"


class MemorisationCheck(models.Model):
    """The nearest training image of a generated image, and whether it is a near copy."""

    generated = models.OneToOneField(
        "generation.GeneratedImage", on_delete=models.CASCADE, related_name="memorisation_check"
    )
    dataset = models.ForeignKey(
        "heritage.TrainingDataset",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    nearest = models.ForeignKey(
        "heritage.TrainingExample",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    similarity = models.FloatField(null=True, blank=True, help_text="SSIM of grey 64 px copies.")
    hash_distance = models.PositiveSmallIntegerField(null=True, blank=True)
    near_copy = models.BooleanField(default=False, db_index=True)
    n_compared = models.PositiveIntegerField(default=0)
    ssim_threshold = models.FloatField()
    hash_threshold = models.PositiveSmallIntegerField()
    checked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.generated_id}: {'NEAR COPY' if self.near_copy else 'ok'}"
