"""The curator's home (/curator/: every task, running jobs) and the landing after login."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from evaluation.models import Study
from generation.models import GeneratedImage, TrainingRun
from heritage.models import Collection, GazetteerPassage, HeritageItem, TrainingDataset
from heritage.selectors import user_is_curator
from jobs.models import Job

ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


@login_required
def landing(request):
    """Where ``/accounts/login/`` sends a user without ``?next=``: curators to their home,
    experts to their studies, everyone else to the kiosk."""
    target = request.GET.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}):
        return redirect(target)
    if user_is_curator(request.user):
        return redirect("curator-home")
    if request.user.groups.filter(name="expert").exists():
        return redirect("evaluation:home")
    if request.user.groups.filter(name="archivist").exists():
        return redirect("/archives/")
    return redirect("kiosk-attract")


@login_required
def home(request):
    if not user_is_curator(request.user):
        raise PermissionDenied("Curators only.")
    jobs = Job.objects.filter(status__in=ACTIVE).order_by("-created_at")[:20]
    return render(
        request,
        "curator/home.html",
        {
            "jobs": jobs,
            "recent_failures": Job.objects.filter(status=Job.Status.FAILED).order_by(
                "-finished_at"
            )[:5],
            "counts": {
                "collections": Collection.objects.count(),
                "items": HeritageItem.objects.count(),
                "passages": GazetteerPassage.objects.count(),
                "drafts": TrainingDataset.objects.filter(frozen=False).count(),
                "datasets": TrainingDataset.objects.filter(frozen=True).count(),
                "runs": TrainingRun.objects.count(),
                "open_studies": Study.objects.filter(status=Study.Status.OPEN).count(),
                "approved": GeneratedImage.objects.filter(approved=True).count(),
            },
        },
    )
