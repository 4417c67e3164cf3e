"""Site-level views: health and JSON-aware error pages."""

from __future__ import annotations

from csp.decorators import csp_update
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

# API docs under the site's CSP. Their scripts are files (Swagger UI's set-up comes from the
# split view's ?script URL, Redoc's one line carries the nonce), but both libraries style their
# widgets at run time with inline <style> elements and attributes, and Redoc runs its search
# in a Worker made from a blob: URL. Only these two pages allow that.
_DOCS_CSP = {"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]}
api_docs = csp_update(_DOCS_CSP)(SpectacularSwaggerSplitView.as_view(url_name="schema"))
api_redoc = csp_update(_DOCS_CSP)(SpectacularRedocView.as_view(url_name="schema"))


def healthz(request):
    """Database, Redis and live workers per queue; 200 when database and Redis answer.

    A worker counts when it is registered on the queue and its Atelier heartbeat is fresh (RQ's
    own registration outlives a worker killed mid-job for as long as the job's timeout).
    """
    report: dict = {"database": "ok", "redis": "ok", "workers": {}}
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        report["database"], healthy = f"error: {type(exc).__name__}", False
    try:
        import django_rq
        from rq import Worker

        from archives.jobqueue import QUEUES, worker_is_alive

        redis = django_rq.get_connection("default")
        redis.ping()
        for name in QUEUES:
            workers = Worker.all(queue=django_rq.get_queue(name))
            report["workers"][name] = sum(1 for w in workers if worker_is_alive(w.name, redis))
    except Exception as exc:
        report["redis"], healthy = f"error: {type(exc).__name__}", False
    report["status"] = "ok" if healthy else "error"
    return JsonResponse(report, status=200 if healthy else 503)


def _wants_json(request) -> bool:
    return request.path.startswith(
        ("/api/", "/iiif/", "/healthz")
    ) or "json" in request.headers.get("Accept", "")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if _wants_json(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return render(request, "500.html", status=500)
