"""Curator pages for training under /curator/generation/: the run form whose preset follows the
dataset, the loss chart (matplotlib SVG, cached), and sweeps made, compared and overlaid live.

Writes go through generation.services (training_run_create, sweep_create), as the API's do.
"""

from __future__ import annotations

import hashlib
import json

from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from core.throttling import throttle_expensive_posts
from generation import selectors, services
from generation.charts import Curve, loss_chart_svg, run_curve, run_loss_chart_svg
from generation.diffusion.config import PRESETS
from generation.models import BaseModel, Sweep, TrainingRun
from generation.views import _errors, curator_required

CHART_SECONDS = 3600  # a chart is cached under a key that changes with the data it draws


def preset_for_dataset(dataset) -> str:
    """The paper preset that fits a dataset: Atlas silk patterns (annotated after Peirce) →
    atlas-000 (U-Net only); landscape paintings / gazetteer passages → gazetteer-001 (U-Net +
    text encoder). Decided by what the examples are: mostly annotated images → Atlas."""
    examples = dataset.examples.all()
    total = examples.count()
    if not total:
        return "gazetteer-001"
    annotated = examples.exclude(category="").count()
    with_passages = examples.filter(image__item__passages__isnull=False).distinct().count()
    if annotated * 2 >= total and annotated >= with_passages:
        return "atlas-000"
    return "gazetteer-001"


def _dataset_choices(datasets) -> list[dict]:
    rows = []
    for d in datasets:
        rows.append({"dataset": d, "preset": preset_for_dataset(d)})
    return rows


def _preset_rows(dataset) -> list[dict]:
    """What each preset will train with on this dataset (resolution and trigger come from it)."""
    rows = []
    for preset in PRESETS.values():
        values = dict(preset.settings)
        if dataset is not None:
            try:
                values = services.training_config_resolve(
                    dataset=dataset, preset=preset.key
                ).to_dict()
            except ValidationError:
                pass  # the form shows the refusal when it is posted
        shown = {
            k: values.get(k)
            for k in (
                "target",
                "resolution",
                "epochs",
                "max_steps",
                "train_batch_size",
                "unet_lr",
                "text_encoder_lr",
                "optimizer",
                "rank",
                "alpha",
                "mixed_precision",
                "trigger_token",
                "checkpoint_every_epochs",
            )
            if values.get(k) not in (None, "")
        }
        rows.append({"preset": preset, "values": shown})
    return rows


@curator_required
@throttle_expensive_posts
def run_new(request):
    from heritage.models import TrainingDataset

    frozen = list(TrainingDataset.objects.filter(frozen=True).order_by("name", "-version"))
    drafts = TrainingDataset.objects.filter(frozen=False)
    errors: list[str] = []
    chosen = None
    wanted = request.POST.get("dataset") or request.GET.get("dataset") or ""
    if wanted.isdigit():
        chosen = next((d for d in frozen if d.pk == int(wanted)), None)
    if chosen is None and frozen:
        chosen = frozen[0]
    form = {
        "dataset": str(chosen.pk) if chosen else "",
        "preset": preset_for_dataset(chosen) if chosen else "",
        "settings": "{}",
        "name": "",
        "base_model": "",
    }
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in ("dataset", "base_model", "preset", "name")}
        form["settings"] = request.POST.get("settings", "{}") or "{}"
        try:
            settings_ = json.loads(form["settings"])
            if not isinstance(settings_, dict):
                raise ValueError
        except ValueError:
            errors.append(_('Settings must be a JSON object, e.g. {"epochs": 10}.'))
        else:
            try:
                if chosen is None or str(chosen.pk) != form["dataset"]:
                    raise ValidationError({"dataset": _("Choose a frozen dataset.")})
                base = BaseModel.objects.filter(pk=form["base_model"] or 0).first()
                run = services.training_run_create(
                    dataset=chosen,
                    base_model=base,
                    preset=form["preset"],
                    settings=settings_,
                    name=form["name"],
                    user=request.user,
                )
            except ValidationError as exc:
                errors.extend(_errors(exc))
            else:
                messages.success(request, _("The run is queued on the GPU queue."))
                return redirect("generation:run", pk=run.pk)
    return render(
        request,
        "generation/curator/run_new.html",
        {
            "form": form,
            "errors": errors,
            "chosen": chosen,
            "suggested": preset_for_dataset(chosen) if chosen else "",
            "presets": _preset_rows(chosen),
            "datasets": _dataset_choices(frozen),
            "drafts": drafts,
            "base_models": selectors.base_model_list(),
        },
        status=400 if errors else 200,
    )


# --- loss charts --------------------------------------------------------------------------


def _cached_svg(key_parts: list, draw) -> str:
    key = "loss-chart:" + hashlib.sha256(json.dumps(key_parts, default=str).encode()).hexdigest()
    svg = cache.get(key)
    if svg is None:
        svg = draw()
        cache.set(key, svg, CHART_SECONDS)
    return svg


def _svg_response(svg: str, filename: str, download: bool) -> HttpResponse:
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["Cache-Control"] = "private, max-age=2"
    if download:
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@curator_required
@require_safe
def run_loss_svg(request, pk: int):
    """``runs/<pk>/loss.svg``: the run's loss chart (``?download=1`` as a file to keep)."""
    run = get_object_or_404(TrainingRun.objects.select_related("job"), pk=pk)
    curve = run_curve(run)
    svg = _cached_svg(
        [
            "run",
            run.pk,
            curve.points[-1:] if curve.points else None,
            len(curve.points),
            curve.checkpoints,
            curve.held_out,
        ],
        lambda: run_loss_chart_svg(run),
    )
    return _svg_response(svg, f"run-{run.pk}-loss.svg", bool(request.GET.get("download")))


def _sweep_curves(sweep: Sweep) -> list[Curve]:
    curves = []
    for run in sweep.runs.select_related("job").order_by("pk"):
        curve = run_curve(run)
        cell = ", ".join(f"{k}={run.settings.get(k)}" for k in sorted(sweep.grid))
        curve.label = cell or curve.label
        curve.checkpoints = []  # one chart, many runs: checkpoints would clutter it
        curves.append(curve)
    return curves


@curator_required
@require_safe
def sweep_loss_svg(request, pk: int):
    sweep = get_object_or_404(Sweep, pk=pk)
    curves = _sweep_curves(sweep)
    svg = _cached_svg(
        ["sweep", sweep.pk, [(c.label, len(c.points), c.points[-1:]) for c in curves]],
        lambda: loss_chart_svg(curves, title=sweep.name),
    )
    return _svg_response(svg, f"sweep-{sweep.pk}-loss.svg", bool(request.GET.get("download")))


# --- sweeps -------------------------------------------------------------------------------


def _parse_values(text: str) -> list:
    """ "1, 2" → [1, 2]; "8e-4 1e-4" → floats; "true" → True; other words stay text."""
    out = []
    for part in text.replace(",", " ").split():
        try:
            out.append(json.loads(part))
        except ValueError:
            out.append(part)
    return out


@curator_required
@throttle_expensive_posts
def sweep_new(request):
    from heritage.models import TrainingDataset

    frozen = list(TrainingDataset.objects.filter(frozen=True))
    errors: list[str] = []
    form = {"name": "", "dataset": "", "preset": "", "settings": "{}"}
    grid_rows = [
        {"key": "train_batch_size", "values": "1 2"},
        {"key": "unet_lr", "values": "1e-4 8e-4"},
        {"key": "", "values": ""},
    ]
    if request.method == "POST":
        form = {k: request.POST.get(k, "") for k in ("name", "dataset", "preset", "settings")}
        keys, values = request.POST.getlist("grid_key"), request.POST.getlist("grid_values")
        grid_rows = [{"key": k, "values": v} for k, v in zip(keys, values, strict=False)]
        grid = {
            k.strip(): _parse_values(v) for k, v in zip(keys, values, strict=False) if k.strip()
        }
        try:
            settings_ = json.loads(form["settings"] or "{}")
            if not isinstance(settings_, dict):
                raise ValueError
        except ValueError:
            errors.append(_('Shared settings must be a JSON object, e.g. {"epochs": 10}.'))
        else:
            dataset = next((d for d in frozen if str(d.pk) == form["dataset"]), None)
            try:
                if dataset is None:
                    raise ValidationError({"dataset": _("Choose a frozen dataset.")})
                sweep = services.sweep_create(
                    name=form["name"].strip() or f"{dataset.name} sweep",
                    dataset=dataset,
                    preset=form["preset"] or preset_for_dataset(dataset),
                    settings=settings_,
                    grid=grid,
                    user=request.user,
                )
            except ValidationError as exc:
                errors.extend(_errors(exc))
            else:
                messages.success(request, _("Sweep queued: one run per cell."))
                return redirect("generation:sweep", pk=sweep.pk)
    return render(
        request,
        "generation/curator/sweep_new.html",
        {
            "form": form,
            "errors": errors,
            "datasets": _dataset_choices(frozen),
            "presets": PRESETS.values(),
            "grid_rows": grid_rows,
        },
        status=400 if errors else 200,
    )


def _sweep_context(sweep: Sweep) -> dict:
    rows = selectors.sweep_comparison(sweep)
    finished = all(r["status"] in ("succeeded", "failed", "cancelled") for r in rows)
    best = min(
        (r for r in rows if r["final_loss"] is not None),
        key=lambda r: r["final_loss"],
        default=None,
    )
    return {
        "sweep": sweep,
        "rows": rows,
        "keys": sorted(sweep.grid),  # jsonb keeps no key order: one order on every database
        "finished": finished,
        "best": best,
        "chart_version": hashlib.md5(  # noqa: S324 - a cache-busting tag, not security
            json.dumps([(r["run"].pk, r["status"], r["final_loss"]) for r in rows]).encode()
            + str(
                sum(
                    len((r["run"].job.data or {}).get("loss_curve") or [])
                    for r in rows
                    if r["run"].job_id
                )
            ).encode()
        ).hexdigest()[:10],
    }


@curator_required
def sweep_detail(request, pk: int):
    sweep = get_object_or_404(Sweep, pk=pk)
    template = (
        "generation/curator/_sweep_live.html"
        if request.headers.get("HX-Request")
        else "generation/curator/sweep.html"
    )
    return render(request, template, _sweep_context(sweep))
