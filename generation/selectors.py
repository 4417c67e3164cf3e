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

LOSS_CURVE_POINTS = 400  # points of a loss curve carried to the run page (live and final)


def loss_curve_points(log: list[dict], max_points: int = LOSS_CURVE_POINTS) -> list[list[float]]:
    """A loss log ([{"step", "loss", "n"?}]) as at most ``max_points`` [step, loss] points: the
    steps cut into equal ranges, each drawn at its last step with the mean loss over it (points
    weighted by the steps they stand for). A diffusion loss is dominated by each step's random
    timestep; a sampled step is as likely a spike as not."""
    points = [p for p in log if p.get("loss") is not None]
    if len(points) <= max_points:
        return [[p["step"], p["loss"]] for p in points]
    first, span = points[0]["step"], points[-1]["step"] - points[0]["step"] + 1
    bins: dict[int, list[float]] = {}  # bin -> [last step, weighted loss sum, weight]
    for p in points:
        index = min(max_points - 1, (p["step"] - first) * max_points // span)
        b = bins.setdefault(index, [0, 0, 0])
        n = p.get("n", 1)
        b[0], b[1], b[2] = p["step"], b[1] + p["loss"] * n, b[2] + n
    return [[step, total / weight] for step, total, weight in bins.values()]


def user_is_curator(user) -> bool:
    from heritage.selectors import user_is_curator as is_curator

    return bool(getattr(user, "is_staff", False)) or is_curator(user)


def base_model_list() -> QuerySet[BaseModel]:
    """Every base model with its registration state (registering, ready, failed)."""
    return BaseModel.objects.select_related("job")


def base_model_choices() -> QuerySet[BaseModel]:
    """The base models a run or request may use: registered (loaded once)."""
    return BaseModel.objects.ready()


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "dataset", "base_model", "job", "lora_diffusers", "lora_kohya", "sweep"
    )


def training_run_detail(pk: int) -> TrainingRun:
    return training_run_list().get(pk=pk)


def generation_request_list() -> QuerySet[GenerationRequest]:
    return GenerationRequest.objects.select_related(
        "base_model", "training_run", "job", "contact_sheet", "passage", "item"
    ).prefetch_related("images__file")


def generation_request_detail(pk: int) -> GenerationRequest:
    return generation_request_list().get(pk=pk)


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
        rows.append(
            {
                "run": run,
                "cell": {key: run.settings.get(key) for key in sorted(sweep.grid)},
                "status": run.status,
                "final_loss": run.final_loss,
                "lora_ssim": (run.metrics.get("lora") or {}).get("ssim"),
                "lora_psnr": (run.metrics.get("lora") or {}).get("psnr"),
                "lora_mse": (run.metrics.get("lora") or {}).get("mse"),
                "base_ssim": (run.metrics.get("base") or {}).get("ssim"),
            }
        )
    return rows


def checkpoint_to_look_at_first(run: TrainingRun):
    """The checkpoint with the lowest held-out loss (ties: the earlier), or None when no
    checkpoint has one (no validation split): the one a curator should look at first."""
    measured = [c for c in run.checkpoints.all() if c.validation_loss is not None]
    return min(measured, key=lambda c: (c.validation_loss, c.step)) if measured else None
