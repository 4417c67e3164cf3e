"""Pages of the evaluation app: experts' blind scoring forms, curators' studies and reports."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from archives.downloads import stored_file_response
from evaluation import selectors, services
from evaluation.models import Dimension, Panel, Study
from generation.models import GeneratedImage, GenerationRequest
from heritage.models import ItemImage

# Anchored descriptions shown beside each score (1-5) of each dimension.
ANCHORS = {
    Dimension.STYLE: (
        gettext_lazy("No trace of the reference style"),
        gettext_lazy("Faint traces of the style"),
        gettext_lazy("Recognisably similar, with clear departures"),
        gettext_lazy("Consistent, with minor departures"),
        gettext_lazy("Indistinguishable from the reference style"),
    ),
    Dimension.IMAGE_TEXT: (
        gettext_lazy("Unrelated to the text"),
        gettext_lazy("One element of the text is shown"),
        gettext_lazy("Main subject matches; details missing or wrong"),
        gettext_lazy("Matches, with minor omissions"),
        gettext_lazy("Everything described is present and right"),
    ),
    Dimension.DETAIL: (
        gettext_lazy("Blurred or empty"),
        gettext_lazy("Few details"),
        gettext_lazy("Adequate detail"),
        gettext_lazy("Rich detail"),
        gettext_lazy("Rich, coherent detail throughout"),
    ),
    Dimension.BEAUTY: (
        gettext_lazy("Unpleasant"),
        gettext_lazy("Weak"),
        gettext_lazy("Acceptable"),
        gettext_lazy("Beautiful"),
        gettext_lazy("Exceptional"),
    ),
}
# The legends, translated (the model's labels are the stored, English names).
LABELS = {
    Dimension.STYLE: gettext_lazy("Style consistency"),
    Dimension.IMAGE_TEXT: gettext_lazy("Image-text match"),
    Dimension.DETAIL: gettext_lazy("Detail richness"),
    Dimension.BEAUTY: gettext_lazy("Artistic beauty"),
}
HELP = {
    Dimension.STYLE: gettext_lazy(
        "How closely does the image follow the style of the heritage images?"
    ),
    Dimension.IMAGE_TEXT: gettext_lazy(
        "How well does the image show what the prompt and passage describe?"
    ),
    Dimension.DETAIL: gettext_lazy("How rich and well-formed are the details?"),
    Dimension.BEAUTY: gettext_lazy("How beautiful is the image as a work of art?"),
}


def _require_curator(request: HttpRequest) -> None:
    if not selectors.user_is_curator(request.user):
        raise PermissionDenied("curators only")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    studies = []
    for study in selectors.studies_for_expert(request.user):
        done, total = selectors.expert_progress(study, request.user)
        studies.append({"study": study, "done": done, "total": total})
    curator = selectors.user_is_curator(request.user)
    return render(
        request,
        "evaluation/home.html",
        {
            "my_studies": studies,
            "is_curator": curator,
            "all_studies": Study.objects.select_related("panel") if curator else [],
        },
    )


@login_required
def study_detail(request: HttpRequest, pk: int) -> HttpResponse:
    study = selectors.study_for_expert(request.user, pk)
    ratings = selectors.expert_ratings(study, request.user)
    rows = [
        {"position": a.position, "rated": len(ratings.get(a.item_id, {}))}
        for a in selectors.expert_assignments(study, request.user)
    ]
    done, total = selectors.expert_progress(study, request.user)
    next_position = next((r["position"] for r in rows if r["rated"] < len(Dimension.values)), None)
    return render(
        request,
        "evaluation/study.html",
        {"study": study, "rows": rows, "done": done, "total": total, "next": next_position},
    )


def _form_context(request, study, assignment, total, errors=None, posted=None):
    own = selectors.expert_ratings(study, request.user).get(assignment.item_id, {})
    changes = selectors.rating_change_counts(assignment.item, request.user)
    dimensions = []
    for value in Dimension.values:
        label = LABELS[value]
        current = own.get(value)
        chosen = (posted or {}).get(value, {}).get("score") or (current.score if current else None)
        comment = (posted or {}).get(value, {}).get("comment")
        if comment is None:
            comment = current.comment if current else ""
        dimensions.append(
            {
                "value": value,
                "label": label,
                "help": HELP[value],
                "choices": [
                    {"score": i + 1, "anchor": anchor, "checked": chosen == i + 1}
                    for i, anchor in enumerate(ANCHORS[value])
                ],
                "comment": comment,
                "error": (errors or {}).get(value),
                "shows_text": value == Dimension.IMAGE_TEXT,
                # Tell the expert when a submit changes a score they saved before.
                "saved": (
                    {
                        "score": current.score,
                        "when": current.updated_at,
                        "changes": changes.get(value, 0),
                    }
                    if current
                    else None
                ),
            }
        )
    done, _ = selectors.expert_progress(study, request.user)
    item = assignment.item
    # Small images are enlarged by a whole factor without smoothing (image-rendering:
    # pixelated), so the expert judges the pixels the model drew, not the browser's blur.
    scale = max(1, DISPLAY_EDGE // max(item.width, item.height, 1))
    return {
        "study": study,
        "item": item,
        "position": assignment.position,
        "total": total,
        "done": done,
        "dimensions": dimensions,
        "errors": errors,
        "incomplete": (errors or {}).get("__all__"),
        "comments_open": any(d["comment"] for d in dimensions),
        "image_url": reverse("evaluation:image", args=[item.token]),
        "display": {"width": item.width * scale, "height": item.height * scale, "scale": scale},
        "style_examples": _style_examples(study),
    }


DISPLAY_EDGE = 448  # px: the image's box on a 1024x768 tablet beside the four scales


def _style_examples(study) -> list[dict]:
    """The real images that show the style asked about ("the reference style"): the study's
    declared references, else its calibration images' sources; published ones only (their
    thumbnails are public), at most six. The same strip for every image of the study."""
    images = [r.image for r in study.references.select_related("image__item__collection")]
    if not images:
        images = [
            i.reference
            for i in study.items.filter(kind="reference").select_related(
                "reference__item__collection"
            )
        ]
    return [
        {
            "src": image.thumbnail_url,
            "width": image.thumbnail_width,
            "height": image.thumbnail_height,
        }
        for image in images
        if image.published and image.thumbnail_url
    ][:6]


@login_required
def rate(request: HttpRequest, pk: int, position: int) -> HttpResponse:
    study = selectors.study_for_expert(request.user, pk)
    assignments = selectors.expert_assignments(study, request.user)
    assignment = get_object_or_404(assignments, position=position)
    total = assignments.count()
    if request.method == "POST":
        if not study.is_open:
            messages.error(request, _("This study is closed; ratings can no longer change."))
            return redirect("evaluation:study", pk=study.pk)
        scores, comments, posted = {}, {}, {}
        for value in Dimension.values:
            score = request.POST.get(f"score_{value}")
            comment = request.POST.get(f"comment_{value}", "")
            posted[value] = {
                "score": int(score) if (score or "").isdigit() else None,
                "comment": comment,
            }
            if score:
                scores[value] = score
            if comment.strip():
                comments[value] = comment
        missing = [str(LABELS[value]) for value in Dimension.values if value not in scores]
        if missing:
            # Moving on (or leaving) with an image half rated loses answers without a word:
            # refuse, say what is missing, save nothing. Skipping is the "without saving" link.
            errors = {
                value: _("Choose a score from 1 to 5.")
                for value in Dimension.values
                if value not in scores
            }
            errors["__all__"] = _(
                "Rate all four dimensions before saving; missing: %(missing)s. Nothing was "
                "saved. To skip this image, use “Next image (without saving)”."
            ) % {"missing": ", ".join(missing)}
            context = _form_context(request, study, assignment, total, errors, posted)
            return render(request, "evaluation/rate.html", context, status=400)
        if scores:
            try:
                services.rating_submit(
                    expert=request.user, item=assignment.item, scores=scores, comments=comments
                )
            except services.StudyClosed as exc:
                messages.error(request, str(exc))
                return redirect("evaluation:study", pk=study.pk)
            except ValidationError as exc:
                errors = {k: " ".join(v) for k, v in exc.message_dict.items()}
                context = _form_context(request, study, assignment, total, errors, posted)
                return render(request, "evaluation/rate.html", context, status=400)
        if "later" in request.POST:
            messages.success(request, _("Saved. You can continue later from here."))
            return redirect("evaluation:study", pk=study.pk)
        if position < total:
            return redirect("evaluation:rate", pk=study.pk, position=position + 1)
        messages.success(request, _("Saved. That was the last image."))
        return redirect("evaluation:study", pk=study.pk)
    return render(request, "evaluation/rate.html", _form_context(request, study, assignment, total))


@login_required
def image(request: HttpRequest, token: str) -> HttpResponse:
    """The stripped copy behind an opaque token; nothing in the response names its source."""
    item = selectors.item_for_token(request.user, token)
    return stored_file_response(request, item.blind, public=False)


# --- curators -----------------------------------------------------------------------------


def _report_args(request: HttpRequest) -> dict:
    sd_over = request.GET.get("sd_over", "ratings")
    pair_by = request.GET.get("pair_by", "group")
    if sd_over not in ("ratings", "rater_means") or pair_by not in ("group", "rater_group"):
        raise ValidationError("sd_over must be ratings|rater_means; pair_by group|rater_group")
    return {"sd_over": sd_over, "pair_by": pair_by}


def _plan_args(request: HttpRequest) -> dict:
    """difference / power / sd for the planning table, from the query string (optional)."""
    out = {}
    for name, key, lo, hi in (
        ("difference", "difference", 0.01, 4),
        ("power", "target_power", 0.5, 0.99),
        ("sd", "sd", 0.01, 4),
    ):
        raw = request.GET.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            raise ValidationError(f"{name} must be a number") from None
        if not lo <= value <= hi:
            raise ValidationError(f"{name} must be between {lo} and {hi}")
        out[key] = value
    return out


@login_required
def report(request: HttpRequest, pk: int) -> HttpResponse:
    _require_curator(request)
    study = get_object_or_404(Study, pk=pk)
    try:
        args = _report_args(request)
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=400, content_type="text/plain")
    data = selectors.study_report(study, **args)
    try:
        plan = _plan_args(request)
        if plan:
            data["power"] = selectors.study_power(study, **plan)
    except (ValueError, ValidationError) as exc:
        messages.error(request, f"Planning: {exc}")
    metric_job = request.GET.get("job")
    return render(
        request,
        "evaluation/report.html",
        {
            "study": study,
            "report": data,
            "args": args,
            "chart": mark_safe(selectors.chart_svg(data)),  # noqa: S308 (built and escaped here)
            "job": metric_job,
        },
    )


@login_required
def report_export(request: HttpRequest, pk: int, fmt: str) -> HttpResponse:
    _require_curator(request)
    study = get_object_or_404(Study, pk=pk)
    try:
        data = selectors.study_report(study, **_report_args(request))
    except ValidationError as exc:
        return HttpResponse(" ".join(exc.messages), status=400, content_type="text/plain")
    if fmt == "csv":
        response = HttpResponse(selectors.report_csv(data), content_type="text/csv")
    else:
        response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-report.{fmt}"'
    return response


@login_required
@require_POST
def study_close(request: HttpRequest, pk: int) -> HttpResponse:
    _require_curator(request)
    study = get_object_or_404(Study, pk=pk)
    if "reopen" in request.POST:
        withdrawn = services.study_reopen(study=study)
        notify = messages.warning if withdrawn else messages.success
        notify(request, services.withdrawn_message(withdrawn))
    elif request.POST.get("confirm") != "yes":
        # Closing makes every rating final: ask first, saying what is still missing.
        done = selectors.study_completion(study)
        return render(request, "evaluation/close_confirm.html", {"study": study, **done})
    else:
        services.study_close(study=study)
        messages.success(request, "The study is closed; ratings are final.")
    return redirect("evaluation:report", pk=study.pk)


@login_required
@require_POST
def study_references(request: HttpRequest, pk: int) -> HttpResponse:
    """Declare the metric references (image ids); bad ids change nothing."""
    _require_curator(request)
    study = get_object_or_404(Study, pk=pk)
    try:
        ids = _ids(request.POST.get("reference_ids", ""))
        services.study_references_set(study=study, image_ids=ids, user=request.user)
    except ValidationError as exc:
        messages.error(request, "References unchanged: " + " ".join(exc.messages))
    else:
        messages.success(
            request,
            f"{len(ids)} reference(s) declared. Compute the automated metrics again to use them.",
        )
    return redirect(f"{reverse('evaluation:report', args=[study.pk])}#references")


@login_required
@require_POST
def study_metrics(request: HttpRequest, pk: int) -> HttpResponse:
    _require_curator(request)
    study = get_object_or_404(Study, pk=pk)
    job = services.study_request_metrics(study=study, user=request.user)
    messages.success(request, f"Automated metrics queued (job {job.pk}).")
    return redirect(f"{reverse('evaluation:report', args=[study.pk])}?job={job.pk}")


def _ids(text: str) -> list[int]:
    out = []
    for part in text.replace(",", " ").split():
        if not part.isdigit():
            raise ValidationError(f"{part!r} is not an id")
        out.append(int(part))
    return out


@login_required
def study_new(request: HttpRequest) -> HttpResponse:
    _require_curator(request)
    context = {
        "panels": Panel.objects.all(),
        "requests": GenerationRequest.objects.filter(images__isnull=False).distinct()[:50],
        "modes": Study.AssignmentMode.choices,
        "values": request.POST,
        # How many prompts and experts a study needs (one image per prompt and condition).
        "plan": selectors.planning_table(),
    }
    if request.method == "POST":
        try:
            request_ids = [int(v) for v in request.POST.getlist("requests") if v.isdigit()]
            image_ids = _ids(request.POST.get("generated_ids", ""))
            generated = list(
                GeneratedImage.objects.filter(request_id__in=request_ids)
                | GeneratedImage.objects.filter(pk__in=image_ids)
            )
            missing = set(image_ids) - {g.pk for g in generated}
            if missing:
                raise ValidationError(f"no generated image with id {sorted(missing)}")
            ref_ids = _ids(request.POST.get("reference_ids", ""))
            refs = list(ItemImage.objects.filter(pk__in=ref_ids))
            if len(refs) != len(set(ref_ids)):
                raise ValidationError("a reference image id does not exist")
            panel = Panel.objects.filter(pk=request.POST.get("panel") or 0).first()
            if panel is None:
                raise ValidationError("choose a panel")
            study = services.study_create(
                title=request.POST.get("title", "").strip(),
                panel=panel,
                generated_images=generated,
                reference_images=refs,
                assignment_mode=request.POST.get("assignment_mode", "all"),
                raters_per_item=int(request.POST.get("raters_per_item") or 3),
                reference_condition=request.POST.get("reference_condition", "base") or "base",
                description=request.POST.get("description", ""),
                instructions=request.POST.get("instructions", ""),
                user=request.user,
            )
        except (ValidationError, ValueError) as exc:
            errors = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            return render(
                request, "evaluation/study_new.html", {**context, "errors": errors}, status=400
            )
        messages.success(
            request, f"Study “{study.title}” created with {study.items.count()} images."
        )
        return redirect("evaluation:report", pk=study.pk)
    return render(request, "evaluation/study_new.html", context)
