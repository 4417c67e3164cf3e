"""Downloads of stored files: who may have a file, and how it is sent.

No file is served by its storage path. ``/files/<token>`` (``StoredFile.url``) names a file by
its random token only; the apps that own files register an access policy here (archives does
not import them), and a file no policy grants is a 404, so its existence is not revealed.

A policy is ``(user, stored_file) -> bool | None``: ``True`` grants, ``None`` (or ``False``)
means "not mine" or "not for this user". One grant is enough. A file granted to an anonymous
user is public and may be cached by shared caches; every other answer is ``private, no-store``.

How the bytes leave (``ATELIER_FILE_SENDER``): ``django`` streams them; ``x-accel-redirect``
(nginx) and ``x-sendfile`` (Apache) answer with an empty body and a header the front server
acts on; ``s3-signed`` redirects to a signed URL valid ``ATELIER_FILE_URL_EXPIRE`` seconds.
"""

from __future__ import annotations

import mimetypes
import posixpath
import uuid
from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    HttpResponseRedirect,
)
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from archives.models import StoredFile

AccessPolicy = Callable[[object, StoredFile], "bool | None"]
DownloadName = Callable[[StoredFile], "str | None"]
_policies: list[AccessPolicy] = []
_namers: list[DownloadName] = []

PUBLIC_MAX_AGE = 3600  # an unpublished item leaves shared caches within the hour


def register_file_access(policy: AccessPolicy) -> AccessPolicy:
    """Add an access policy (call from an AppConfig.ready(); registering twice is harmless)."""
    if policy not in _policies:
        _policies.append(policy)
    return policy


def register_download_name(namer: DownloadName) -> DownloadName:
    """Add a function naming a file for the browser (``None``: the storage name's last part).
    Blind copies use it to go out under a name that says nothing."""
    if namer not in _namers:
        _namers.append(namer)
    return namer


def download_name(stored: StoredFile) -> str:
    for namer in _namers:
        name = namer(stored)
        if name:
            return name
    return posixpath.basename(stored.name)


def file_access_granted(user, stored: StoredFile) -> bool:
    return any(policy(user, stored) for policy in _policies)


def file_is_public(stored: StoredFile) -> bool:
    return file_access_granted(AnonymousUser(), stored)


def _content_type(stored: StoredFile) -> str:
    return stored.content_type or mimetypes.guess_type(stored.name)[0] or "application/octet-stream"


def stored_file_response(
    request: HttpRequest,
    stored: StoredFile,
    *,
    public: bool,
    filename: str | None = None,
    attachment: bool = False,
) -> HttpResponse:
    """Send a file the caller has already decided ``request.user`` may have.

    ``filename`` is the name the browser sees (default: ``download_name``); ``public``
    allows shared caches (only for what anyone may have).
    """
    sender = settings.ATELIER_FILE_SENDER
    filename = filename or download_name(stored)
    disposition = content_disposition_header(attachment, filename)
    cache_control = f"public, max-age={PUBLIC_MAX_AGE}" if public else "private, no-store"
    content_type = _content_type(stored)

    if sender == "s3-signed":
        # The bucket answers with the headers given here (S3 response-* parameters).
        url = default_storage.url(
            stored.name,
            parameters={
                "ResponseContentDisposition": disposition,
                "ResponseCacheControl": cache_control,
                "ResponseContentType": content_type,
            },
            expire=settings.ATELIER_FILE_URL_EXPIRE,
        )
        response: HttpResponse = HttpResponseRedirect(url)
        # The redirect carries a short-lived credential: never cache it anywhere.
        response["Cache-Control"] = "private, no-store"
        response["X-Content-Type-Options"] = "nosniff"
        response["Referrer-Policy"] = "no-referrer"
        return response

    etag = f'"{stored.sha256}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponseNotModified()
    elif sender == "x-accel-redirect":
        response = HttpResponse(b"", content_type=content_type)
        # An nginx `internal` location maps this prefix onto MEDIA_ROOT (docs/deploy.md).
        response["X-Accel-Redirect"] = settings.ATELIER_FILE_INTERNAL_PREFIX + quote(stored.name)
    elif sender == "x-sendfile":
        response = HttpResponse(b"", content_type=content_type)
        response["X-Sendfile"] = default_storage.path(stored.name)
    else:
        response = FileResponse(default_storage.open(stored.name, "rb"), content_type=content_type)
    response["ETag"] = etag
    response["Content-Disposition"] = disposition
    response["Cache-Control"] = cache_control
    response["X-Content-Type-Options"] = "nosniff"
    return response


def archives_file_access(user, stored: StoredFile) -> bool | None:
    """Superusers may have any file; bag archives go to archivists (core.roles)."""
    from archives.models import BagExport
    from core.roles import is_archivist

    if getattr(user, "is_superuser", False) and user.is_active:
        return True
    if BagExport.objects.filter(archive=stored).exists() and is_archivist(user):
        return True
    return None


@require_safe
def download(request: HttpRequest, token: uuid.UUID) -> HttpResponse:
    """``/files/<token>``: the file if a policy grants it to this user, else 404."""
    stored = StoredFile.objects.filter(token=token).first()
    if stored is None or not file_access_granted(request.user, stored):
        raise Http404("No such file.")
    return stored_file_response(request, stored, public=file_is_public(stored))
