"""Models of the generation app: base models, LoRA training runs and sweeps, generation.

Every file (LoRA weights, checkpoints, validation images, generated PNGs, contact sheets) is an
``archives.StoredFile`` with its sha256. The ``jobs.Job`` row is the truth about a run or a
request: runs and requests read ``status`` (and when it finished, and why it failed) from their
job, and querysets filter on ``job__status``. Nothing mirrors it.
"""

from __future__ import annotations

from django.conf import settings as django_settings
from django.db import models

from jobs.models import Job

JobStatus = Job.Status  # the one job state, read by runs and requests through their job


class JobState(models.Model):
    """A row whose state is its job's: ``status``, ``finished_at``, ``error`` read ``job``.

    Abstract (no table); select_related("job") in lists. A row is created before its job in
    the same transaction, so ``job`` is empty only for that moment: it reads as queued.
    """

    job = models.ForeignKey(
        "jobs.Job", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def status(self) -> str:
        return self.job.status if self.job_id else Job.Status.QUEUED

    @property
    def finished_at(self):
        return self.job.finished_at if self.job_id else None

    @property
    def error(self) -> str:
        """The job's error without its traceback (that stays on the job, for operators)."""
        return self.job.error.split("\n\n", 1)[0] if self.job_id else ""

    @property
    def is_finished(self) -> bool:
        return self.status in Job.FINISHED


class BaseModelQuerySet(models.QuerySet):
    def ready(self) -> BaseModelQuerySet:
        """Registered models: loaded once by their registration job (or registered directly)."""
        return self.filter(models.Q(job__isnull=True) | models.Q(job__status=Job.Status.SUCCEEDED))


class BaseModel(models.Model):
    """A Stable Diffusion 1.x base model on local disk: a diffusers folder or one .safetensors.

    Registering one loads it once, in its ``generation.base_model_register`` job (``job``):
    until that job succeeds it is "registering" (or "failed", with the job's message) and
    nothing can use it.
    """

    class State(models.TextChoices):
        REGISTERING = "registering"
        READY = "ready"
        FAILED = "failed"

    class Kind(models.TextChoices):
        DIFFUSERS = "diffusers", "diffusers folder"
        SINGLE_FILE = "single_file", "single .safetensors file"

    name = models.CharField(max_length=200, unique=True)
    path = models.CharField(max_length=1000, help_text="Local folder or .safetensors file.")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Single file: sha256 of the file. Folder: sha256 over the weight files' names and hashes.
    sha256 = models.CharField(max_length=64, blank=True)
    resolution = models.PositiveIntegerField(
        default=512, help_text="Native image size in pixels (512 for SD 1.5)."
    )
    description = models.TextField(blank=True)
    is_default = models.BooleanField(default=False)
    job = models.ForeignKey(
        "jobs.Job",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Its registration job (none: registered directly, as the demo model is).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BaseModelQuerySet.as_manager()

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="generation_one_default_base_model",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def state(self) -> str:
        if not self.job_id or self.job.status == Job.Status.SUCCEEDED:
            return self.State.READY
        return self.State.FAILED if self.job.is_finished else self.State.REGISTERING

    @property
    def registration_error(self) -> str:
        return self.job.error.split("\n\n", 1)[0] if self.state == self.State.FAILED else ""

    @property
    def short_hash(self) -> str:
        """A1111's short "Model hash" (first 10 hex digits), written into PNG parameters."""
        return self.sha256[:10]


class Sweep(models.Model):
    """One request over a grid of settings (e.g. batch size x learning rate): one run per cell."""

    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(
        "heritage.TrainingDataset", on_delete=models.PROTECT, related_name="sweeps"
    )
    base_model = models.ForeignKey(BaseModel, on_delete=models.PROTECT, related_name="sweeps")
    preset = models.CharField(max_length=50, blank=True)
    settings = models.JSONField(default=dict, blank=True, help_text="Settings shared by cells.")
    grid = models.JSONField(default=dict, help_text='{"train_batch_size": [1, 2], ...}')
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class TrainingRun(JobState):
    """One LoRA fine-tuning run of a base model on a training dataset, as a ``gpu`` job."""

    name = models.CharField(max_length=200, blank=True)
    dataset = models.ForeignKey(
        "heritage.TrainingDataset", on_delete=models.PROTECT, related_name="training_runs"
    )
    base_model = models.ForeignKey(
        BaseModel, on_delete=models.PROTECT, related_name="training_runs"
    )
    preset = models.CharField(max_length=50, blank=True)
    # The full LoraTrainingConfig as JSON (LoraTrainingConfig.to_dict()).
    settings = models.JSONField(default=dict)
    # [{"step": 1, "epoch": 0, "loss": 0.1, "lr": 1e-4}, ...] (bounded; see services).
    loss_log = models.JSONField(default=list, blank=True)
    final_loss = models.FloatField(null=True, blank=True)
    # Validation metrics against the base model's images (e.g. mse/psnr/ssim), when computed.
    metrics = models.JSONField(default=dict, blank=True)
    lora_diffusers = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lora_kohya = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    trigger_token = models.CharField(max_length=64, blank=True)
    estimated_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # What the pre-flight estimate assumed, or its warning when the run may not fit.
    memory_note = models.CharField(max_length=1000, blank=True)
    peak_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    sweep = models.ForeignKey(
        Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name or f"run {self.pk}"

    @property
    def lora_sha256(self) -> str:
        return self.lora_diffusers.sha256 if self.lora_diffusers_id else ""


class TrainingCheckpoint(models.Model):
    """A resumable state kept in storage (so a run can resume on another worker)."""

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="checkpoints")
    epoch = models.PositiveIntegerField(help_text="Epochs completed.")
    step = models.PositiveIntegerField(help_text="Optimizer steps completed.")
    # A zip of the checkpoint folder train_lora wrote (LoRA + optimizer + RNG state).
    archive = models.ForeignKey("archives.StoredFile", on_delete=models.PROTECT, related_name="+")
    loss = models.FloatField(null=True, blank=True)
    # The held-out loss at this checkpoint (fixed timesteps and noise: comparable across
    # checkpoints and runs); None without a validation split.
    validation_loss = models.FloatField(null=True, blank=True)
    # The LoRA as it was at this checkpoint (diffusers format): downloadable, and a
    # generation request may name it to compare epochs.
    lora = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run_id", "step"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step"], name="generation_checkpoint_once")
        ]

    def __str__(self) -> str:
        return f"{self.run} epoch {self.epoch} step {self.step}"


class ValidationImage(models.Model):
    """A validation image of a run: LoRA at a checkpoint, or the base model, same prompt+seed."""

    class Condition(models.TextChoices):
        BASE = "base"
        LORA = "lora"

    run = models.ForeignKey(TrainingRun, on_delete=models.CASCADE, related_name="validation_images")
    epoch = models.PositiveIntegerField()
    step = models.PositiveIntegerField(default=0)
    condition = models.CharField(max_length=10, choices=Condition.choices)
    prompt = models.TextField()
    seed = models.PositiveBigIntegerField()
    file = models.ForeignKey("archives.StoredFile", on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["run_id", "epoch", "prompt", "condition"]

    def __str__(self) -> str:
        return f"{self.run} epoch {self.epoch} {self.condition}: {self.prompt[:30]}"


class GenerationRequest(JobState):
    """Images from one prompt with chosen settings; optionally with a LoRA and its base pair."""

    class Sampler(models.TextChoices):
        DDIM = "ddim", "DDIM"
        EULER = "euler", "Euler"
        DPMPP = "dpmpp", "DPM-Solver++"

    prompt = models.TextField(blank=True, help_text="Empty: the passage's approved prompt.")
    # The prompt actually rendered: "[trigger], prompt" when the LoRA has a trigger token.
    final_prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    passage = models.ForeignKey(
        "heritage.GazetteerPassage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generation_requests",
    )
    item = models.ForeignKey(
        "heritage.HeritageItem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generation_requests",
    )
    base_model = models.ForeignKey(
        BaseModel, on_delete=models.PROTECT, related_name="generation_requests"
    )
    training_run = models.ForeignKey(
        TrainingRun,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="generation_requests",
        help_text="The LoRA (a finished training run).",
    )
    checkpoint = models.ForeignKey(
        TrainingCheckpoint,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="generation_requests",
        help_text="An earlier checkpoint's LoRA of the run instead of its final one.",
    )
    lora_scale = models.FloatField(default=1.0)
    sampler = models.CharField(max_length=10, choices=Sampler.choices, default=Sampler.DDIM)
    steps = models.PositiveIntegerField(default=35)
    cfg = models.FloatField(default=7.0)
    width = models.PositiveIntegerField(default=512)
    height = models.PositiveIntegerField(default=512)
    seeds = models.JSONField(default=list)
    compare_with_base = models.BooleanField(default=False)
    contact_sheet = models.ForeignKey(
        "archives.StoredFile", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    warnings = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"request {self.pk}: {(self.final_prompt or self.prompt)[:40]}"

    @property
    def conditions(self) -> list[str]:
        if self.training_run_id is None:
            return ["base"]
        return ["base", "lora"] if self.compare_with_base else ["lora"]


class GeneratedImage(models.Model):
    """One AI-generated PNG (with A1111 parameters and JSON provenance inside the file)."""

    class Condition(models.TextChoices):
        BASE = "base"
        LORA = "lora"

    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="images")
    file = models.ForeignKey("archives.StoredFile", on_delete=models.PROTECT, related_name="+")
    seed = models.PositiveBigIntegerField()
    condition = models.CharField(max_length=10, choices=Condition.choices)
    prompt = models.TextField()
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    # Curator approval: only approved images appear on the kiosk beside their item/passage.
    approved = models.BooleanField(default=False, db_index=True)
    approved_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    item = models.ForeignKey(
        "heritage.HeritageItem",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generated_images",
    )
    passage = models.ForeignKey(
        "heritage.GazetteerPassage",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="generated_images",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    # Shown wherever the image is shown (pages, API, kiosk).
    AI_LABEL = "AI-generated image"

    class Meta:
        ordering = ["request_id", "seed", "condition"]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.condition}, seed {self.seed})"
