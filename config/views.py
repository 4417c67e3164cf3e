"""Site-level views: health and JSON-aware error pages."""

from __future__ import annotations

import uuid

from csp.decorators import csp_update
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

from jobs.models import WorkerHeartbeat

# API docs under the site's CSP. Their scripts are files (Swagger UI's set-up comes from the
# split view's ?script URL, Redoc's one line carries the nonce), but both libraries style their
# widgets at run time with inline <style> elements and attributes, and Redoc runs its search
# in a Worker made from a blob: URL. Only these two pages allow that.
_DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}
api_docs = csp_update(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="schema"))
api_redoc = csp_update(_DOCS_CSP)(SpectacularRedocView.as_view(url_name="schema"))


def healthz(request):
    """Database (a write, not just a read), Redis, and live workers per queue; 200 when the
    database takes writes and Redis answers, else 503.

    Workers are counted from their own heartbeat rows in the database (fresh within
    ``HEARTBEAT_TTL``; one on this host also while its process exists), so the count stays
    true after Redis restarts empty; RQ's own registration outlives a worker killed mid-job.
    """
    report: dict = {"database": "ok", "redis": "ok", "workers": {}}
    healthy = True
    try:
        from jobs.queue import QUEUES, live_workers

        # A read-only file or a full disk still answers SELECT: prove an INSERT goes through,
        # then roll it back.
        with transaction.atomic():
            WorkerHeartbeat.objects.create(
                name=f"healthz:{uuid.uuid4()}", queues=[], last_seen=timezone.now()
            )
            transaction.set_rollback(True)
        alive = live_workers()
        report["workers"] = {q: sum(1 for w in alive if q in w.queues) for q in QUEUES}
    except Exception as exc:
        report["database"], healthy = f"error: {type(exc).__name__}", False
    try:
        import django_rq

        django_rq.get_connection("default").ping()
    except Exception as exc:
        report["redis"], healthy = f"error: {type(exc).__name__}", False
    report["status"] = "ok" if healthy else "error"
    return JsonResponse(report, status=200 if healthy else 503)


def _wants_json(request) -> bool:
    return request.path.startswith(
        ("/api/", "/iiif/", "/healthz")
    ) or "json" in request.headers.get("Accept", "")


def _error_context(request) -> dict:
    # Staff pages keep the site's chrome; every other address is the kiosk's (localized, with
    # its idle reset, so a kiosk left on an error page still returns to the start).
    staff = request.path.startswith(
        ("/curator/", "/evaluation/", "/archives/", "/admin/", "/accounts/")
    )
    return {"staff_page": staff, "error_page": True}


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", _error_context(request), status=404)


def server_error(request):
    if _wants_json(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return render(request, "500.html", _error_context(request), status=500)
