"""Curator pages: base models, training runs (live progress + loss curve), sweeps, generation."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_POST, require_safe

from core.errors import DomainError
from core.throttling import throttle_expensive_posts
from generation import selectors, services
from generation.diffusion.prompting import PromptDraftError
from generation.hooks import ApprovalQueued
from generation.models import (
    GeneratedImage,
    GenerationRequest,
    Sweep,
    TrainingCheckpoint,
    TrainingRun,
)


def curator_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not selectors.user_is_curator(request.user):
            raise PermissionDenied("Curators only.")
        return view(request, *args, **kwargs)

    return wrapped


def _errors(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field}: {m}" for field, ms in exc.message_dict.items() for m in ms]
    return list(exc.messages)


@curator_required
def index(request):
    return render(
        request,
        "generation/index.html",
        {
            "base_models": selectors.base_model_list(),
            "runs": selectors.training_run_list()[:30],
            "sweeps": Sweep.objects.all()[:10],
            "requests": selectors.generation_request_list()[:30],
        },
    )


# Rows of a run's validation metrics: the two models, then images no model drew.
VALIDATION_ROWS = (
    ("base", "base model"),
    ("lora", "base + LoRA"),
    ("reference_training", "reference: training images"),
    ("reference_flat", "reference: flat mean colour"),
)


# How the run page names the scalar facts a finished run records (generation.jobs), in order.
RUN_FACT_LABELS = {
    "steps": "Optimizer steps",
    "epochs": "Epochs",
    "seconds_per_step": "Seconds per step",
    "device": "Device",
    "precision": "Precision",
    "resumed_from_step": "Resumed from step",
}
# Facts the page already shows in their own rows (final loss, memory, kohya file).
RUN_FACTS_SHOWN_ELSEWHERE = frozenset(
    {"final_loss_last_step", "final_loss_window", "peak_memory_kind", "kohya_note"}
)


def run_facts(metrics: dict) -> dict[str, object]:
    """The run's scalar facts under readable names: the known ones first, any other (from a
    registered metrics source) after them with its key as the name."""
    scalars = {
        k: round(v, 4) if isinstance(v, float) else v
        for k, v in metrics.items()
        if not isinstance(v, dict) and v is not None and k not in RUN_FACTS_SHOWN_ELSEWHERE
    }
    known = {label: scalars.pop(k) for k, label in RUN_FACT_LABELS.items() if k in scalars}
    return known | {k.replace("_", " ").capitalize(): v for k, v in scalars.items()}


@curator_required
def run_detail(request, pk: int):
    run = get_object_or_404(selectors.training_run_list(), pk=pk)
    # The loss chart is an <img> of runs/<pk>/loss.svg (generation.curator_views).
    return render(
        request,
        "generation/run_detail.html",
        {
            "run": run,
            "job": run.job,
            "checkpoints": run.checkpoints.select_related("archive", "lora"),
            "look_first": selectors.checkpoint_to_look_at_first(run),
            "validation_images": run.validation_images.select_related("file"),
            # Base vs LoRA rows of the validation metrics; the rest (steps, device...) as facts.
            "validation_metrics": [
                {"condition": name, "label": label, **run.metrics[name]}
                for name, label in VALIDATION_ROWS
                if isinstance(run.metrics.get(name), dict)
            ],
            "run_facts": run_facts(run.metrics),
        },
    )


@curator_required
@require_POST
def run_cancel(request, pk: int):
    run = get_object_or_404(TrainingRun, pk=pk)
    try:
        services.training_run_cancel(run=run)
        messages.info(request, "Cancellation requested.")
    except DomainError as exc:
        messages.error(request, str(exc))
    return redirect("generation:run", pk=pk)


@curator_required
@throttle_expensive_posts
def request_new(request):
    from heritage.models import GazetteerPassage

    errors: list[str] = []
    form = {"sampler": "ddim", "steps": "35", "cfg": "7", "images": "2", "lora_scale": "1"}
    if request.method == "POST":
        form = request.POST.dict()
        try:
            run = TrainingRun.objects.filter(pk=form.get("training_run") or 0).first()
            seeds = [int(s) for s in form.get("seeds", "").replace(",", " ").split()] or None
            obj = services.generation_request_create(
                prompt=form.get("prompt", ""),
                negative_prompt=form.get("negative_prompt", ""),
                passage=GazetteerPassage.objects.filter(pk=form.get("passage") or 0).first(),
                training_run=run,
                checkpoint=TrainingCheckpoint.objects.filter(pk=form.get("checkpoint") or 0)
                .select_related("run")
                .first(),
                lora_scale=float(form.get("lora_scale") or 1),
                sampler=form.get("sampler", "ddim"),
                steps=int(form.get("steps") or 35),
                cfg=float(form.get("cfg") or 7),
                width=int(form["width"]) if form.get("width") else None,
                height=int(form["height"]) if form.get("height") else None,
                shape=form.get("shape", ""),
                images=None if seeds else int(form.get("images") or 1),
                seeds=seeds,
                compare_with_base=bool(form.get("compare_with_base")),
                user=request.user,
            )
        except ValueError:
            errors.append("Steps, CFG, size, images, LoRA scale and seeds must be numbers.")
        except ValidationError as exc:
            errors.extend(_errors(exc))
        else:
            return redirect("generation:request", pk=obj.pk)
    return render(
        request,
        "generation/request_new.html",
        {
            "form": form,
            "errors": errors,
            "passages": GazetteerPassage.objects.exclude(approved_prompt="")[:200],
            "all_passages": GazetteerPassage.objects.all()[:200],
            "runs": TrainingRun.objects.filter(
                job__status="succeeded", lora_diffusers__isnull=False
            ),
            "samplers": GenerationRequest.Sampler.choices,
            "shapes": [
                ("square", "Square (1:1)"),
                ("hanging_scroll", "Hanging scroll (1:2)"),
                ("handscroll", "Handscroll (4:1)"),
            ],
            "checkpoints": TrainingCheckpoint.objects.filter(
                run__job__status="succeeded", lora__isnull=False
            ).select_related("run"),
        },
        status=400 if errors else 200,
    )


@curator_required
def request_detail(request, pk: int):
    obj = get_object_or_404(selectors.generation_request_list(), pk=pk)
    by_seed: dict[int, dict[str, GeneratedImage]] = {}
    for image in obj.images.all():
        by_seed.setdefault(image.seed, {})[image.condition] = image
    rows = [(seed, by_seed.get(seed, {})) for seed in obj.seeds]
    return render(
        request,
        "generation/request_detail.html",
        {"req": obj, "job": obj.job, "rows": rows, "conditions": obj.conditions},
    )


@curator_required
@require_POST
def image_approve(request, pk: int):
    image = get_object_or_404(GeneratedImage, pk=pk)
    approved = request.POST.get("approved") == "1"
    try:
        services.generated_image_approve(image=image, approved=approved, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except ApprovalQueued as queued:  # compared with the training images first, in a job
        back = reverse("generation:request", args=[image.request_id])
        return redirect(f"{reverse('jobs:job', args=[queued.job.pk])}?{urlencode({'next': back})}")
    else:
        messages.success(request, "Approved for the kiosk." if approved else "Approval withdrawn.")
    return redirect("generation:request", pk=image.request_id)


@curator_required
@require_POST
def passage_draft(request, pk: int):
    """Queue a prompt draft by the LLM and follow its job; drafting off is a message."""
    from heritage.models import GazetteerPassage

    passage = get_object_or_404(GazetteerPassage, pk=pk)
    back = request.POST.get("next") or reverse("generation:request_new")
    if not url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        back = reverse("generation:request_new")
    try:
        job = services.passage_prompt_draft_request(passage=passage, user=request.user)
    except PromptDraftError as exc:
        messages.error(request, f"No draft: {exc}")
        return redirect(back)
    # The model may take a while: a job, followed on its page, which links back.
    return redirect(f"{reverse('jobs:job', args=[job.pk])}?{urlencode({'next': back})}")


# --- content credentials (docs/content-credentials.md) --------------------------------------


def _copy_response(request, image: GeneratedImage):
    """A generated image as a signed download: marked unless a curator's working copy."""
    from django.http import Http404, HttpResponse
    from django.utils.http import content_disposition_header

    from archives.downloads import file_access_granted, file_is_public
    from generation import credentials

    if not file_access_granted(request.user, image.file):
        raise Http404("No such image.")
    asked = {"1": True, "0": False}.get(request.GET.get("mark", ""))
    marked = credentials.mark_wanted(request.user, asked=asked)
    language = request.GET.get("lang") or getattr(request, "LANGUAGE_CODE", "en")
    data = credentials.generated_image_copy(image=image, marked=marked, language=language)
    response = HttpResponse(data, content_type="image/png")
    response["Content-Disposition"] = content_disposition_header(
        True, f"ai-generated-{image.pk}{'-marked' if marked else ''}.png"
    )
    response["Cache-Control"] = "private, no-store"
    if file_is_public(image.file):
        response["Cache-Control"] = "public, max-age=3600"
    response["Vary"] = "Cookie, Accept-Language"
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def image_download(request, pk: int):
    """``images/<pk>/download/``: the signed PNG; ``?mark=1|0`` (curators), ``?lang=``."""
    image = get_object_or_404(GeneratedImage.objects.select_related("file", "request"), pk=pk)
    return _copy_response(request, image)


@curator_required
def credentials_verify(request):
    """Read an uploaded or stored image's content credentials and show what they say."""
    from generation import credentials

    found, errors = None, []
    if request.method == "POST":
        upload = request.FILES.get("file")
        image_id = (request.POST.get("generated_image") or "").strip()
        try:
            if upload is not None:
                limit = settings.ATELIER_MAX_IMAGE_BYTES
                if upload.size > limit:
                    raise ValidationError(
                        {"file": f"The file is {upload.size:,} bytes; the limit is {limit:,}."}
                    )
                found = credentials.credentials_verify(data=upload.read(), filename=upload.name)
            elif image_id.isdigit():
                image = GeneratedImage.objects.filter(pk=int(image_id)).first()
                if image is None:
                    raise ValidationError({"generated_image": f"No generated image {image_id}."})
                found = credentials.generated_image_verify(image=image)
            else:
                raise ValidationError({"file": "Choose an image file or a generated image id."})
        except ValidationError as exc:
            errors = _errors(exc)
    return render(
        request,
        "generation/credentials.html",
        {"found": found, "report": found.report if found else None, "errors": errors},
        status=400 if errors else 200,
    )
