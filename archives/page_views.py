"""Archivist pages of the preservation layer: fixity problems, bag exports, validation, import."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from archives.bag_registry import bag_scopes
from archives.bagit_export import bag_export_enqueue
from archives.bagit_import import bag_import
from archives.bagit_validate import BagRefused, bag_validate, upload_saved, upload_too_large
from archives.fixity import fixity_enqueue, fixity_problems
from archives.models import BagExport, BagImport, FixityEvent, StoredFile
from archives.package_api import bag_download_response, is_archivist
from core.errors import DomainError, error_messages
from jobs.models import Job


def archivist_required(view):
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_archivist(request.user):
            raise PermissionDenied("Only archivists may use the archive pages.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


@archivist_required
def index(request):
    failing, failing_count = fixity_problems()
    context = {
        "last_fixity": FixityEvent.objects.first(),
        "fixity_events": FixityEvent.objects.all()[:10],
        "fixity_job": Job.objects.filter(kind="archives.fixity").first(),
        "failing": failing,
        "failing_count": failing_count,
        "stored_count": StoredFile.objects.count(),
        "never_checked": StoredFile.objects.filter(last_fixity_at__isnull=True).count(),
        "exports": BagExport.objects.select_related("job", "archive")[:30],
        "imports": BagImport.objects.all()[:10],
        "scopes": sorted(bag_scopes()),
    }
    return render(request, "archives/index.html", context)


@require_POST
@archivist_required
def fixity_run(request):
    job = fixity_enqueue(user=request.user, trigger="manual")
    messages.success(request, f"Fixity check queued (job {job.pk}).")
    return redirect("archives:index")


@require_POST
@archivist_required
def export_create(request):
    try:
        export = bag_export_enqueue(
            scope=request.POST.get("scope", ""),
            target_id=request.POST.get("target", "").strip(),
            archive_format=request.POST.get("format", "tar"),
            user=request.user,
        )
    except (DomainError, ValidationError) as exc:
        messages.error(request, f"Export not started: {'; '.join(error_messages(exc))}")
    else:
        messages.success(request, f"Export of {export.target_label} queued.")
    return redirect("archives:index")


@archivist_required
def export_download(request, pk):
    export = get_object_or_404(BagExport.objects.select_related("archive"), pk=pk)
    if export.archive is None:
        messages.error(request, "That bag is not ready yet.")
        return redirect("archives:index")
    return bag_download_response(export)


def bag_upload_page(view):
    """An archivist page taking a bag upload, refused by its Content-Length before the body
    is read: CSRF is checked after that (Django's pattern for custom upload handling)."""
    protected = csrf_protect(view)

    @csrf_exempt
    @archivist_required
    def wrapped(request, *args, **kwargs):
        if request.method == "POST":
            problem = upload_too_large(request.META.get("CONTENT_LENGTH"))
            if problem:
                return HttpResponse(problem, status=413, content_type="text/plain")
        return protected(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def _with_upload(request, action):
    try:
        upload = request.FILES.get("file")
        if upload is None:
            raise BagRefused(["Choose a tar or zip file to upload."])
        with upload_saved(upload) as path:
            return action(path)
    except BagRefused as exc:
        return exc


@bag_upload_page
def validate(request):
    report = None
    if request.method == "POST":
        outcome = _with_upload(request, bag_validate)
        report = (
            {"valid": False, "problems": outcome.problems}
            if isinstance(outcome, BagRefused)
            else outcome.as_dict()
        )
    status = 400 if report and not report["valid"] else 200
    return render(request, "archives/validate.html", {"report": report}, status=status)


@bag_upload_page
def import_bag(request):
    result, problems = None, None
    if request.method == "POST":
        outcome = _with_upload(request, lambda path: bag_import(path=path, user=request.user))
        if isinstance(outcome, BagRefused):
            problems = outcome.problems
        else:
            result = outcome
    status = 400 if problems else 200
    return render(
        request, "archives/import.html", {"result": result, "problems": problems}, status=status
    )
