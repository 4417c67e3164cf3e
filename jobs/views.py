"""A page that follows one job while it runs (pages that queue slow work send the user here).

``/jobs/<id>/?next=<url>`` shows the job's status, progress and message; the small
``/jobs/<id>/status/`` fragment replaces itself every second through htmx until the job has
finished, then shows how it ended (the handler's result message, or why it failed) and a link
back to ``next``. Who may see a job is the jobs API's rule.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils.http import url_has_allowed_host_and_scheme

from jobs.api import JobViewSet


def _visible_job(request: HttpRequest, pk):
    return get_object_or_404(JobViewSet(request=request).get_queryset(), pk=pk)


def _next_url(request: HttpRequest) -> str:
    url = request.GET.get("next", "")
    safe = url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure())
    return url if safe else ""


def _context(request: HttpRequest, job) -> dict:
    return {
        "job": job,
        "next": _next_url(request),
        "error": job.error.split("\n\n", 1)[0] if job.error else "",
    }


@login_required
def job_page(request: HttpRequest, pk) -> HttpResponse:
    job = _visible_job(request, pk)
    return render(request, "jobs/job.html", _context(request, job))


@login_required
def job_status(request: HttpRequest, pk) -> HttpResponse:
    """htmx: the status fragment (it stops polling once the job has finished)."""
    job = _visible_job(request, pk)
    return render(request, "jobs/_job_status.html", _context(request, job))
