"""Curator pages of evaluation under /curator/evaluation/: expert panels and the approval
queue (which generated images may go on the kiosk, and why the others may not)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import error_messages
from evaluation import selectors, services
from evaluation.models import Panel, Study
from generation import services as generation_services
from generation.hooks import ApprovalQueued
from generation.models import GeneratedImage
from heritage.curator_views import curator_required

EXPERT_GROUP = "expert"


def _experts():
    return User.objects.filter(groups__name=EXPERT_GROUP, is_active=True).order_by("username")


@curator_required
def panels(request):
    errors: list[str] = []
    if request.method == "POST":
        members = list(_experts().filter(pk__in=request.POST.getlist("members")))
        try:
            panel = services.panel_create(
                name=request.POST.get("name", "").strip(),
                description=request.POST.get("description", "").strip(),
                members=members,
                user=request.user,
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Panel %(name)s made.") % {"name": panel.name})
            return redirect("evaluation-curator:panels")
    return render(
        request,
        "evaluation/curator/panels.html",
        {
            "panels": Panel.objects.annotate(n_studies=Count("studies")).prefetch_related(
                "members"
            ),
            "experts": _experts(),
            "errors": errors,
            "form": request.POST if errors else {},
            "chosen": set(request.POST.getlist("members")) if errors else set(),
        },
        status=400 if errors else 200,
    )


@curator_required
@require_POST
def panel_members(request, pk: int):
    """Change who is on a panel: experts only (the same rule panel_create applies)."""
    panel = get_object_or_404(Panel, pk=pk)
    members = list(_experts().filter(pk__in=request.POST.getlist("members")))
    try:
        services.panel_members_set(panel=panel, members=members)
    except ValidationError as exc:
        for line in error_messages(exc):
            messages.error(request, line)
    else:
        messages.success(request, _("Members of %(name)s saved.") % {"name": panel.name})
    return redirect("evaluation-curator:panels")


def approval_rows() -> list[dict]:
    """LoRA images put before experts in a study, with whether each may be approved and why
    not (still in an open study, a near copy). Base-model images are never listed: the kiosk
    labels an approved image as made by a model trained on the collection."""
    images = list(
        GeneratedImage.objects.filter(condition=GeneratedImage.Condition.LORA)
        .filter(study_items__isnull=False)
        .distinct()
        .select_related("file", "request", "item", "passage")
        .order_by("-created_at")[:200]
    )
    ids = [i.pk for i in images]
    open_ids = selectors.images_in_open_studies(ids)
    flags = selectors.near_copy_flags(ids)
    rows = []
    for image in images:
        flag = flags[image.pk]
        reason = ""
        if image.pk in open_ids:
            reason = _("Still rated blind in an open study: approve it after that study closes.")
        elif flag["near_copy"]:
            similarity = flag.get("similarity")
            reason = _(
                "A near copy of a training image%(s)s: it may reproduce a collection image."
            ) % {"s": f" (SSIM {similarity:.2f})" if similarity is not None else ""}
        rows.append(
            {
                "image": image,
                "reason": reason,
                "checked": flag["checked"],
                "studies": Study.objects.filter(items__generated=image).distinct(),
            }
        )
    return rows


@curator_required
def approvals(request):
    rows = approval_rows()
    return render(
        request,
        "evaluation/curator/approvals.html",
        {
            "ready": [r for r in rows if not r["reason"] and not r["image"].approved],
            "approved": [r for r in rows if r["image"].approved],
            "refused": [r for r in rows if r["reason"] and not r["image"].approved],
        },
    )


@curator_required
@require_POST
def approve(request, pk: int):
    image = get_object_or_404(GeneratedImage, pk=pk)
    approved = request.POST.get("approved") == "1"
    try:
        generation_services.generated_image_approve(
            image=image, approved=approved, user=request.user
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except ApprovalQueued as queued:  # the near-copy check first, in a job (jobs page)
        back = reverse("evaluation-curator:approvals")
        return redirect(f"{reverse('jobs:job', args=[queued.job.pk])}?{urlencode({'next': back})}")
    else:
        messages.success(
            request, _("Approved for the kiosk.") if approved else _("Approval withdrawn.")
        )
    return redirect("evaluation-curator:approvals")
