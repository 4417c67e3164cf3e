"""Serializers of the generation API. Writes go through generation.services."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from generation import selectors as generation_selectors
from generation.diffusion.config import PRESETS
from generation.diffusion.inference import SHAPES
from generation.models import (
    BaseModel,
    GeneratedImage,
    GenerationRequest,
    Sweep,
    TrainingCheckpoint,
    TrainingRun,
    ValidationImage,
)
from jobs.models import Job


class StoredFileSerializer(serializers.Serializer):
    """The OpenAPI shape of a stored file (see StoredFileField)."""

    url = serializers.URLField(help_text="Absolute URL of the file.")
    sha256 = serializers.CharField(help_text="SHA-256 of the content, hex.")
    size = serializers.IntegerField(help_text="Bytes.")


@extend_schema_field(StoredFileSerializer)
class StoredFileField(serializers.Field):
    """A stored file as {url, sha256, size}; null where the field allows it (allow_null)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def get_attribute(self, instance):
        return getattr(instance, self.source_attrs[0])

    def to_representation(self, stored):
        if stored is None:
            return None
        request = self.context.get("request")
        url = stored.url
        return {
            "url": request.build_absolute_uri(url) if request else url,
            "sha256": stored.sha256,
            "size": stored.size,
        }


class BaseModelSerializer(serializers.ModelSerializer):
    state = serializers.ChoiceField(
        choices=BaseModel.State.choices,
        read_only=True,
        help_text="registering until its job (job) has loaded it once; failed: see error.",
    )
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    error = serializers.CharField(source="registration_error", read_only=True)

    class Meta:
        model = BaseModel
        fields = [
            "id",
            "name",
            "path",
            "kind",
            "sha256",
            "resolution",
            "description",
            "is_default",
            "state",
            "job",
            "error",
        ]


class BaseModelRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    path = serializers.CharField(max_length=1000)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    make_default = serializers.BooleanField(required=False, default=False)


class CheckpointSerializer(serializers.ModelSerializer):
    file = StoredFileField(source="archive")
    # The LoRA as it was at this checkpoint (name it as "checkpoint" in a generation request).
    lora = StoredFileField(allow_null=True)

    class Meta:
        model = TrainingCheckpoint
        fields = ["id", "epoch", "step", "loss", "validation_loss", "lora", "file"]


class ValidationImageSerializer(serializers.ModelSerializer):
    file = StoredFileField()

    class Meta:
        model = ValidationImage
        fields = ["epoch", "step", "condition", "prompt", "seed", "file"]


class TrainingRunSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    # Read from the run's job (the one job state); the same field and values as before.
    status = serializers.ChoiceField(choices=Job.Status.choices, read_only=True)
    error = serializers.CharField(read_only=True, help_text="Why the job failed (first line).")
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    lora_diffusers = StoredFileField(allow_null=True)
    lora_kohya = StoredFileField(allow_null=True)
    checkpoints = CheckpointSerializer(many=True, read_only=True)
    look_first_checkpoint = serializers.SerializerMethodField(
        help_text="Id of the checkpoint with the lowest held-out loss (the one to look at first)."
    )
    validation_images = ValidationImageSerializer(many=True, read_only=True)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_look_first_checkpoint(self, run: TrainingRun) -> int | None:
        best = generation_selectors.checkpoint_to_look_at_first(run)
        return best.pk if best else None

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "name",
            "dataset",
            "base_model",
            "preset",
            "settings",
            "status",
            "job",
            "trigger_token",
            "final_loss",
            "loss_log",
            "metrics",
            "estimated_memory_bytes",
            "memory_note",
            "peak_memory_bytes",
            "lora_diffusers",
            "lora_kohya",
            "checkpoints",
            "look_first_checkpoint",
            "validation_images",
            "sweep",
            "error",
            "created_at",
            "finished_at",
        ]


class TrainingRunCreateSerializer(serializers.Serializer):
    dataset = serializers.IntegerField()
    base_model = serializers.IntegerField(required=False, allow_null=True)
    preset = serializers.ChoiceField(choices=["", *PRESETS], required=False, default="")
    settings = serializers.DictField(required=False, default=dict)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


class SweepCreateSerializer(TrainingRunCreateSerializer):
    grid = serializers.DictField(child=serializers.ListField())


class SweepRunSerializer(serializers.Serializer):
    """One cell of a sweep's comparison table."""

    id = serializers.IntegerField(help_text="The training run.")
    cell = serializers.DictField(help_text="This cell's settings, e.g. {'unet_lr': 0.0008}.")
    status = serializers.ChoiceField(choices=Job.Status.choices)
    final_loss = serializers.FloatField(allow_null=True)
    metrics = serializers.DictField(help_text="Validation MSE/PSNR/SSIM (lora, base), steps...")


class SweepSerializer(serializers.ModelSerializer):
    runs = serializers.SerializerMethodField()

    class Meta:
        model = Sweep
        fields = ["id", "name", "dataset", "base_model", "preset", "settings", "grid", "runs"]

    @extend_schema_field(SweepRunSerializer(many=True))
    def get_runs(self, sweep) -> list[dict]:
        from generation.selectors import sweep_comparison

        return [
            {
                "id": row["run"].pk,
                "cell": row["cell"],
                "status": row["status"],
                "final_loss": row["final_loss"],
                "metrics": row["run"].metrics,
            }
            for row in sweep_comparison(sweep)
        ]


class GeneratedImageSerializer(serializers.ModelSerializer):
    file = StoredFileField()
    label = serializers.SerializerMethodField()

    class Meta:
        model = GeneratedImage
        fields = [
            "id",
            "label",
            "request",
            "seed",
            "condition",
            "prompt",
            "width",
            "height",
            "file",
            "approved",
            "item",
            "passage",
            "created_at",
        ]

    def get_label(self, image) -> str:
        return GeneratedImage.AI_LABEL


class GenerationRequestSerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job_id", read_only=True, allow_null=True)
    status = serializers.ChoiceField(choices=Job.Status.choices, read_only=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)
    images = GeneratedImageSerializer(many=True, read_only=True)
    contact_sheet = StoredFileField(allow_null=True)

    class Meta:
        model = GenerationRequest
        fields = [
            "id",
            "prompt",
            "final_prompt",
            "negative_prompt",
            "passage",
            "item",
            "base_model",
            "training_run",
            "checkpoint",
            "lora_scale",
            "sampler",
            "steps",
            "cfg",
            "width",
            "height",
            "seeds",
            "compare_with_base",
            "status",
            "job",
            "images",
            "contact_sheet",
            "created_at",
            "finished_at",
        ]


class GenerationRequestCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(
        required=False, allow_blank=True, default="", trim_whitespace=True
    )
    negative_prompt = serializers.CharField(required=False, allow_blank=True, default="")
    passage = serializers.IntegerField(required=False, allow_null=True)
    item = serializers.IntegerField(required=False, allow_null=True)
    base_model = serializers.IntegerField(required=False, allow_null=True)
    training_run = serializers.IntegerField(required=False, allow_null=True)
    checkpoint = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="A checkpoint id of the run: its LoRA instead of the final one.",
    )
    lora_scale = serializers.FloatField(required=False, default=1.0)
    sampler = serializers.ChoiceField(
        choices=GenerationRequest.Sampler.values, required=False, default="ddim"
    )
    steps = serializers.IntegerField(required=False, default=35)
    cfg = serializers.FloatField(required=False, default=7.0)
    width = serializers.IntegerField(required=False, allow_null=True, default=None)
    height = serializers.IntegerField(required=False, allow_null=True, default=None)
    shape = serializers.ChoiceField(
        choices=list(SHAPES),
        required=False,
        allow_blank=True,
        default="",
        help_text="Instead of width and height: square, hanging_scroll (1:2), handscroll (4:1), "
        "sized from the base model's native resolution.",
    )
    images = serializers.IntegerField(required=False, allow_null=True, default=None)
    seeds = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=2**32 - 1),
        required=False,
        allow_null=True,
        default=None,
    )
    compare_with_base = serializers.BooleanField(required=False, default=False)


class ApproveSerializer(serializers.Serializer):
    approved = serializers.BooleanField(default=True)


class TrainingPresetSerializer(serializers.Serializer):
    key = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    settings = serializers.DictField(help_text="Training settings the preset sets.")


class ApprovalJobSerializer(serializers.Serializer):
    """An approval waiting for the near-copy check: poll ``job_url``."""

    job = serializers.UUIDField()
    job_url = serializers.CharField()
    image = serializers.IntegerField()


class PromptDraftJobSerializer(serializers.Serializer):
    """A queued prompt draft: poll ``job_url``; on success its result has ``prompt_draft``."""

    job = serializers.UUIDField()
    job_url = serializers.CharField()
    passage = serializers.IntegerField()


class DetailSerializer(serializers.Serializer):
    """An error or refusal message."""

    detail = serializers.CharField()


class CredentialsVerifySerializer(serializers.Serializer):
    """One of: an uploaded image, or the id of a stored generated image."""

    file = serializers.FileField(required=False, help_text="An image (PNG, JPEG, TIFF, WebP).")
    generated_image = serializers.IntegerField(required=False, min_value=1)

    def validate(self, attrs):
        from django.conf import settings

        if ("file" in attrs) == ("generated_image" in attrs):
            raise serializers.ValidationError("Send either file or generated_image (one of them).")
        upload = attrs.get("file")
        limit = settings.ATELIER_MAX_IMAGE_BYTES
        if upload is not None and upload.size > limit:
            raise serializers.ValidationError(
                {"file": f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes."}
            )
        return attrs


class CredentialIngredientSerializer(serializers.Serializer):
    title = serializers.CharField()
    relationship = serializers.CharField()
    kind = serializers.CharField(help_text="base model, LoRA, ...")
    sha256 = serializers.CharField()


class CredentialReportSerializer(serializers.Serializer):
    """What the content credentials of a file say, and whether they still hold."""

    has_manifest = serializers.BooleanField()
    intact = serializers.BooleanField(help_text="Signature valid and the file's hash matches.")
    summary = serializers.CharField()
    state = serializers.CharField(help_text="none, Invalid, Valid or Trusted (c2pa's state).")
    signature_valid = serializers.BooleanField()
    hash_valid = serializers.BooleanField()
    trusted = serializers.BooleanField(help_text="Signer's root is on this installation's list.")
    ai_generated = serializers.BooleanField()
    digital_source_type = serializers.CharField()
    signer = serializers.CharField()
    issuer = serializers.CharField()
    signed_at = serializers.CharField()
    claim_generator = serializers.CharField()
    producer = serializers.CharField()
    content_id = serializers.CharField()
    title = serializers.CharField()
    actions = serializers.ListField(child=serializers.DictField())
    ingredients = CredentialIngredientSerializer(many=True)
    generation = serializers.DictField(help_text="Atelier's assertion: dataset, passage, seed.")
    failures = serializers.ListField(child=serializers.DictField())
    error = serializers.CharField()
    filename = serializers.CharField()
    generated_image = serializers.IntegerField(allow_null=True)
