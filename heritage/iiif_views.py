"""IIIF endpoints: Presentation 3.0 manifests/collections and Image API 3.0 level0.

Every response carries ``Access-Control-Allow-Origin: *`` so viewers on other sites can load
them. Anonymous users get published records only.
"""

from __future__ import annotations

import functools
import json

from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_http_methods

from archives.downloads import stored_file_response
from heritage import iiif, selectors
from heritage.models import ItemImage

PRESENTATION_TYPE = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
IMAGE_TYPE = 'application/ld+json;profile="http://iiif.io/api/image/3/context.json"'


def cors(view):
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
        else:
            try:
                response = view(request, *args, **kwargs)
            except Http404 as exc:
                response = JsonResponse({"detail": str(exc) or "Not found."}, status=404)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Accept, If-None-Match"
        response["Access-Control-Expose-Headers"] = "ETag, Content-Type"
        return response

    return require_http_methods(["GET", "HEAD", "OPTIONS"])(wrapper)


def _base(request) -> str:
    return request.build_absolute_uri("/").rstrip("/")


def _json(document: dict, content_type: str, request) -> HttpResponse:
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=None), content_type=content_type
    )
    if request.user.is_authenticated:
        patch_cache_control(response, private=True, max_age=0)
    else:
        patch_cache_control(response, public=True, max_age=300)
    return response


def _visible_image(request, pk: int) -> ItemImage:
    return get_object_or_404(selectors.image_list(user=request.user), pk=pk)


@cors
def manifest(request, pk: int):
    item = get_object_or_404(selectors.item_list(user=request.user), pk=pk)
    return _json(iiif.item_manifest(item, _base(request)), PRESENTATION_TYPE, request)


@cors
def collection(request, slug: str):
    coll = get_object_or_404(selectors.collection_list(user=request.user), slug=slug)
    items = list(selectors.item_list(user=request.user).filter(collection=coll))
    return _json(iiif.collection_document(coll, items, _base(request)), PRESENTATION_TYPE, request)


@cors
def top_collection(request):
    collections = list(selectors.collection_list(user=request.user))
    return _json(iiif.top_collection(collections, _base(request)), PRESENTATION_TYPE, request)


@cors
def image_base(request, pk: int):
    _visible_image(request, pk)
    return HttpResponseRedirect(f"/iiif/image/{pk}/info.json", status=303)


@cors
def image_info(request, pk: int):
    image = _visible_image(request, pk)
    return _json(iiif.image_info(image, _base(request)), IMAGE_TYPE, request)


@cors
def image(request, pk: int, region: str, size: str, rotation: str, quality: str, fmt: str):
    """Level0: region ``full``, rotation ``0``, quality ``default``, format ``jpg``, and only a
    size listed in info.json (``w,h``) or ``max``."""
    img = _visible_image(request, pk)
    if (region, rotation, quality, fmt) != ("full", "0", "default", "jpg"):
        return JsonResponse(
            {"detail": "This level0 service serves full/<size>/0/default.jpg only."}, status=400
        )
    sizes = img.iiif_sizes()
    if not sizes:
        return JsonResponse(
            {"detail": "The derivatives of this image are not ready yet."}, status=404
        )
    if size == "max":
        wanted = sizes[-1]
    else:
        try:
            wanted = tuple(int(v) for v in size.split(","))
        except ValueError:
            return JsonResponse({"detail": f"Unsupported size {size!r}."}, status=400)
        if wanted not in sizes:
            return JsonResponse(
                {"detail": f"Size {size} is not pre-rendered; use one of the sizes in info.json."},
                status=400,
            )
    stored = img.thumbnail if wanted == (img.thumbnail_width, img.thumbnail_height) else img.display
    # Sent like every stored file (ETag, X-Accel-Redirect or a signed S3 URL in production);
    # shared caches may keep a published image's derivatives only.
    return stored_file_response(
        request, stored, public=img.published, filename=f"{pk}-{wanted[0]}x{wanted[1]}.jpg"
    )
