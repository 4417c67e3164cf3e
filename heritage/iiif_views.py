"""IIIF endpoints: Presentation 3.0 manifests/collections and Image API 3.0 level1.

Every response carries ``Access-Control-Allow-Origin: *`` so viewers on other sites can load
them. Anonymous users get published records only.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json

from django.core.files.storage import default_storage
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


@functools.lru_cache(maxsize=4)
def _decoded(name: str, sha256: str):
    """The decoded display derivative: a deep zoom asks for a dozen tiles of it at once."""
    from PIL import Image

    with default_storage.open(name, "rb") as handle, Image.open(handle) as image:
        image.load()
        return image.convert("RGB")


def _bad(message: str) -> JsonResponse:
    return JsonResponse({"detail": message}, status=400)


@cors
def image(request, pk: int, region: str, size: str, rotation: str, quality: str, fmt: str):
    """Level1: region ``full``, ``square`` or ``x,y,w,h``; size ``max``, ``w,``, ``,h`` or
    ``w,h``; rotation ``0``; quality ``default``; format ``jpg``. Pre-rendered sizes are sent
    as stored; other requests are cut from the display derivative."""
    img = _visible_image(request, pk)
    if rotation != "0":
        return _bad("This level1 service serves rotation 0 only.")
    if quality != "default":
        return _bad("This level1 service serves the default quality only.")
    if fmt != "jpg":
        return _bad("This level1 service serves jpg only.")
    sizes = img.iiif_sizes()
    if not sizes:
        return JsonResponse(
            {"detail": "The derivatives of this image are not ready yet."}, status=404
        )
    max_w, max_h = sizes[-1]
    try:
        box = iiif.parse_region(region, img.width, img.height)
        wanted = iiif.parse_size(size, box[2], box[3], max_w, max_h, max_w / img.width)
    except iiif.ImageRequestError as exc:
        return _bad(str(exc))
    if box == (0, 0, img.width, img.height) and wanted in sizes:
        # A pre-rendered size: sent like every stored file (ETag, X-Accel-Redirect or a signed
        # S3 URL in production); shared caches may keep a published image's derivatives only.
        small = wanted == (img.thumbnail_width, img.thumbnail_height)
        stored = img.thumbnail if small else img.display
        return stored_file_response(
            request, stored, public=img.published, filename=f"{pk}-{wanted[0]}x{wanted[1]}.jpg"
        )
    display = img.display
    etag = hashlib.sha256(f"{display.sha256}/{box}/{wanted}".encode()).hexdigest()[:32]
    if request.headers.get("If-None-Match") == f'"{etag}"':
        response = HttpResponse(status=304)
    else:
        source = _decoded(display.name, display.sha256)
        out = io.BytesIO()
        iiif.render_region(source, (img.width, img.height), box, wanted).save(
            out, "JPEG", quality=85
        )
        response = HttpResponse(out.getvalue(), content_type="image/jpeg")
    response["ETag"] = f'"{etag}"'
    if img.published and not request.user.is_authenticated:
        patch_cache_control(response, public=True, max_age=86400)
    else:
        patch_cache_control(response, private=True, max_age=0)
    return response
