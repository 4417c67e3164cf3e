"""Reads of the generation app."""

from __future__ import annotations

from django.db.models import QuerySet

from generation.models import (
    BaseModel,
    GeneratedImage,
    GenerationRequest,
    Sweep,
    TrainingRun,
)
from generation.services import status_sync


def user_is_curator(user) -> bool:
    from heritage.selectors import user_is_curator as is_curator

    return bool(getattr(user, "is_staff", False)) or is_curator(user)


def base_model_list() -> QuerySet[BaseModel]:
    return BaseModel.objects.all()


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "dataset", "base_model", "job", "lora_diffusers", "lora_kohya", "sweep"
    )


def training_run_detail(pk: int) -> TrainingRun:
    run = training_run_list().get(pk=pk)
    status_sync(run)
    return run


def generation_request_list() -> QuerySet[GenerationRequest]:
    return GenerationRequest.objects.select_related(
        "base_model", "training_run", "job", "contact_sheet", "passage", "item"
    ).prefetch_related("images__file")


def generation_request_detail(pk: int) -> GenerationRequest:
    request = generation_request_list().get(pk=pk)
    status_sync(request)
    return request


def generated_image_list(*, user=None) -> QuerySet[GeneratedImage]:
    """Curators see every image; everyone else only the approved ones (the kiosk's)."""
    images = GeneratedImage.objects.select_related("file", "request", "item", "passage")
    if not user_is_curator(user):
        images = images.filter(approved=True)
    return images


def approved_images_for_item(item) -> QuerySet[GeneratedImage]:
    return GeneratedImage.objects.filter(item=item, approved=True).select_related("file")


def approved_images_for_passage(passage) -> QuerySet[GeneratedImage]:
    return GeneratedImage.objects.filter(passage=passage, approved=True).select_related("file")


def sweep_comparison(sweep: Sweep) -> list[dict]:
    """One row per cell: the grid values, status, final loss, validation metrics."""
    rows = []
    for run in sweep.runs.select_related("job").order_by("pk"):
        status_sync(run)
        rows.append(
            {
                "run": run,
                "cell": {key: run.settings.get(key) for key in sweep.grid},
                "status": run.status,
                "final_loss": run.final_loss,
                "lora_ssim": (run.metrics.get("lora") or {}).get("ssim"),
                "lora_psnr": (run.metrics.get("lora") or {}).get("psnr"),
                "lora_mse": (run.metrics.get("lora") or {}).get("mse"),
                "base_ssim": (run.metrics.get("base") or {}).get("ssim"),
            }
        )
    return rows
