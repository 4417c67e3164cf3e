"""Admin of the generation app: base models, runs, sweeps, requests and image approval."""

from __future__ import annotations

from django.contrib import admin, messages

from core.errors import DomainError
from generation.models import (
    BaseModel,
    GeneratedImage,
    GenerationRequest,
    Sweep,
    TrainingCheckpoint,
    TrainingRun,
    ValidationImage,
)


@admin.register(BaseModel)
class BaseModelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "path", "is_default", "state", "short_hash", "created_at"]
    list_filter = ["kind", "is_default"]
    list_select_related = ["job"]
    search_fields = ["name", "path"]
    readonly_fields = ["sha256", "job", "created_at"]

    def save_model(self, request, obj, form, change):
        # New base models go through the service: it validates the files and refuses pickles.
        if change:
            return super().save_model(request, obj, form, change)
        from generation.services import base_model_register

        try:
            registered = base_model_register(
                name=obj.name, path=obj.path, description=obj.description, user=request.user
            )
        except Exception as exc:
            messages.error(request, str(exc))
            raise
        obj.pk = registered.pk
        obj.refresh_from_db()
        messages.info(request, f"{obj.name} is being registered: its job loads it once.")


class CheckpointInline(admin.TabularInline):
    model = TrainingCheckpoint
    extra = 0
    readonly_fields = ["epoch", "step", "loss", "archive", "created_at"]
    can_delete = False


class ValidationImageInline(admin.TabularInline):
    model = ValidationImage
    extra = 0
    readonly_fields = ["epoch", "step", "condition", "prompt", "seed", "file"]
    can_delete = False


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["__str__", "dataset", "base_model", "preset", "status", "final_loss", "sweep"]
    list_filter = [("job__status", admin.ChoicesFieldListFilter), "preset"]
    list_select_related = ["dataset", "base_model", "sweep", "job"]
    search_fields = ["name"]
    raw_id_fields = ["job", "lora_diffusers", "lora_kohya", "sweep"]
    readonly_fields = [
        "status",
        "loss_log",
        "final_loss",
        "metrics",
        "peak_memory_bytes",
        "estimated_memory_bytes",
        "error",
        "created_at",
        "finished_at",
    ]
    inlines = [CheckpointInline, ValidationImageInline]
    actions = ["cancel_runs"]

    @admin.action(description="Cancel the selected runs")
    def cancel_runs(self, request, queryset):
        from generation.services import training_run_cancel

        for run in queryset:
            try:
                training_run_cancel(run=run)
            except DomainError as exc:
                messages.warning(request, f"{run}: {exc}")


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ["name", "dataset", "base_model", "preset", "created_at"]


class GeneratedImageInline(admin.TabularInline):
    model = GeneratedImage
    extra = 0
    fields = ["seed", "condition", "file", "approved"]
    # Approval goes through the service (memorisation check, open blind studies): the actions
    # of the generated images' admin, the request page or the API.
    readonly_fields = ["seed", "condition", "file", "approved"]
    can_delete = False


@admin.register(GenerationRequest)
class GenerationRequestAdmin(admin.ModelAdmin):
    list_display = ["__str__", "base_model", "training_run", "sampler", "steps", "status"]
    list_filter = [("job__status", admin.ChoicesFieldListFilter), "sampler", "compare_with_base"]
    list_select_related = ["base_model", "training_run", "job"]
    search_fields = ["prompt", "final_prompt"]
    raw_id_fields = ["job", "contact_sheet", "passage", "item", "training_run"]
    inlines = [GeneratedImageInline]


@admin.register(GeneratedImage)
class GeneratedImageAdmin(admin.ModelAdmin):
    list_display = ["__str__", "request", "condition", "seed", "approved", "item", "passage"]
    list_filter = ["approved", "condition"]
    raw_id_fields = ["request", "file", "item", "passage", "approved_by"]
    readonly_fields = ["approved", "approved_by", "approved_at"]
    actions = ["approve", "unapprove"]

    @admin.action(description="Approve for the kiosk (AI-generated label shown)")
    def approve(self, request, queryset):
        self._decide(request, queryset, approved=True)

    @admin.action(description="Withdraw kiosk approval")
    def unapprove(self, request, queryset):
        self._decide(request, queryset, approved=False)

    def _decide(self, request, queryset, *, approved: bool) -> None:
        # Through the service, one image at a time: refusals (near copies, images in open
        # blind studies) are reported by name and leave those images unchanged.
        from django.core.exceptions import ValidationError

        from generation.hooks import ApprovalQueued
        from generation.services import generated_image_approve

        done = 0
        for image in queryset.order_by("pk"):
            try:
                generated_image_approve(image=image, approved=approved, user=request.user)
            except ValidationError as exc:
                messages.error(request, f"{image}: {' '.join(exc.messages)}")
            except ApprovalQueued as queued:
                messages.info(
                    request,
                    f"{image}: compared with the training images first (job {queued.job.pk}); "
                    "approved when that job succeeds.",
                )
            else:
                done += 1
        if done:
            verb = "approved for the kiosk" if approved else "withdrawn from the kiosk"
            messages.success(request, f"{done} image(s) {verb}.")
