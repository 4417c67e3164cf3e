"""Curator pages of the catalogue under /curator/catalogue/: collections, items, image upload,
annotations drawn on the image, motif vocabulary, gazetteer passages, bulk import, datasets.

Every write goes through heritage.services (the same functions the API calls), so a page
refuses exactly what the API refuses, with the same messages.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from functools import wraps
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core.errors import error_messages
from heritage import bulk, selectors, services
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    MotifTerm,
    SemioticAnnotation,
    TrainingDataset,
    TrainingExample,
)

LANGS = (("en", "English", "ltr"), ("zh", "中文", "ltr"), ("ug", "ئۇيغۇرچە", "rtl"))
# Offered in the rights field (any rightsstatements.org / creativecommons.org URI is accepted).
RIGHTS = (
    ("http://rightsstatements.org/vocab/InC/1.0/", "In Copyright"),
    ("http://rightsstatements.org/vocab/InC-EDU/1.0/", "In Copyright - Educational Use Permitted"),
    ("http://rightsstatements.org/vocab/NoC-NC/1.0/", "No Copyright - Non-Commercial Use Only"),
    ("http://rightsstatements.org/vocab/CNE/1.0/", "Copyright Not Evaluated"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "Public Domain Mark"),
    ("https://creativecommons.org/publicdomain/zero/1.0/", "CC0"),
    ("https://creativecommons.org/licenses/by/4.0/", "CC BY 4.0"),
    ("https://creativecommons.org/licenses/by-nc/4.0/", "CC BY-NC 4.0"),
)
STAGING = "import-staging"  # images of a previewed import wait here until it is confirmed


def curator_required(view):
    @login_required
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not selectors.user_is_curator(request.user):
            raise PermissionDenied(_("Curators only."))
        return view(request, *args, **kwargs)

    return wrapped


def langmap_from(post, name: str) -> dict[str, str]:
    """One input per language (``title_en``, ``title_zh``, ``title_ug``) → a language map."""
    values = {code: post.get(f"{name}_{code}", "").strip() for code, _lang, _dir in LANGS}
    return {code: text for code, text in values.items() if text}


def lang_fields(name: str, label: str, value: dict | None = None, *, area: bool = False) -> dict:
    """Context for curator/_langmap.html: the inputs of one multilingual field."""
    value = value or {}
    return {
        "name": name,
        "label": label,
        "area": area,
        "inputs": [
            {
                "id": f"{name}_{code}",
                "lang": code,
                "dir": d,
                "language": lang,
                "value": value.get(code, ""),
            }
            for code, lang, d in LANGS
        ],
    }


def _fail(request, exc: ValidationError) -> None:
    for line in error_messages(exc):
        messages.error(request, line)


# --- collections and items ----------------------------------------------------------------


@curator_required
def collections(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    posted = request.POST if request.method == "POST" else {}
    if request.method == "POST":
        slug = request.POST.get("slug", "").strip()
        try:
            title = langmap_from(request.POST, "title")
            if not title:
                raise ValidationError({"title": _("Give the title in at least one language.")})
            collection = services.collection_create(
                slug=slug,
                title=title,
                description=langmap_from(request.POST, "description"),
                published=request.POST.get("published") == "on",
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Collection %(name)s created.") % {"name": collection})
            return redirect("catalogue:collection", slug=collection.slug)
    rows = Collection.objects.annotate(n_items=Count("items"))
    return render(
        request,
        "heritage/curator/collections.html",
        {
            "collections": rows,
            "errors": errors,
            "slug": posted.get("slug", "") if posted else "",
            "published": bool(posted and posted.get("published")),
            "title_fields": lang_fields(
                "title", _("Title"), langmap_from(posted, "title") if posted else {}
            ),
            "description_fields": lang_fields(
                "description",
                _("Description"),
                langmap_from(posted, "description") if posted else {},
                area=True,
            ),
        },
        status=400 if errors else 200,
    )


def _item_form_context(item: HeritageItem | None, post=None) -> dict:
    def value(name, default=""):
        if post is not None:
            return post.get(name, "")
        return getattr(item, name, default) if item else default

    return {
        "accession_number": value("accession_number"),
        "period": value("period"),
        "place": value("place"),
        "provenance": value("provenance"),
        "rights": value("rights"),
        "published": (post.get("published") == "on")
        if post is not None
        else bool(item and item.published),
        "title_fields": lang_fields(
            "title",
            _("Title"),
            langmap_from(post, "title") if post is not None else (item.title if item else {}),
        ),
        "description_fields": lang_fields(
            "description",
            _("Description"),
            langmap_from(post, "description")
            if post is not None
            else (item.description if item else {}),
            area=True,
        ),
        "credit_fields": lang_fields(
            "credit_line",
            _("Credit line"),
            langmap_from(post, "credit_line")
            if post is not None
            else (item.credit_line if item else {}),
        ),
        "rights_choices": RIGHTS,
        "rights_known": value("rights") in {uri for uri, _name in RIGHTS},
    }


def _item_fields(post) -> dict:
    return {
        "title": langmap_from(post, "title"),
        "description": langmap_from(post, "description"),
        "credit_line": langmap_from(post, "credit_line"),
        "period": post.get("period", "").strip(),
        "place": post.get("place", "").strip(),
        "provenance": post.get("provenance", "").strip(),
        "rights": post.get("rights", "").strip(),
        "published": post.get("published") == "on",
    }


@curator_required
def collection_detail(request: HttpRequest, slug: str) -> HttpResponse:
    collection = get_object_or_404(Collection, slug=slug)
    errors: list[str] = []
    item_post = None
    if request.method == "POST" and request.POST.get("action") == "edit":
        try:
            title = langmap_from(request.POST, "title")
            if not title:
                raise ValidationError({"title": _("Give the title in at least one language.")})
            services.collection_update(
                collection=collection,
                expected_version=int(request.POST.get("version") or 0) or None,
                title=title,
                description=langmap_from(request.POST, "description"),
                published=request.POST.get("published") == "on",
            )
        except services.VersionConflict as exc:
            errors = [str(exc)]
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Collection saved."))
            return redirect("catalogue:collection", slug=collection.slug)
    elif request.method == "POST" and request.POST.get("action") == "new-item":
        item_post = request.POST
        try:
            fields = _item_fields(request.POST)
            if not fields["title"]:
                raise ValidationError({"title": _("Give the title in at least one language.")})
            item = services.item_create(
                collection=collection,
                accession_number=request.POST.get("accession_number", "").strip(),
                **fields,
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Item %(name)s created.") % {"name": item})
            return redirect("catalogue:item", pk=item.pk)
    return render(
        request,
        "heritage/curator/collection.html",
        {
            "collection": collection,
            "items": collection.items.annotate(n_images=Count("images")),
            "errors": errors,
            "title_fields": lang_fields("title", _("Title"), collection.title),
            "description_fields": lang_fields(
                "description", _("Description"), collection.description, area=True
            ),
            "new_item": _item_form_context(None, item_post),
        },
        status=400 if errors else 200,
    )


@curator_required
def item_detail(request: HttpRequest, pk: int) -> HttpResponse:
    item = get_object_or_404(HeritageItem.objects.select_related("collection"), pk=pk)
    errors: list[str] = []
    post = None
    if request.method == "POST":
        post = request.POST
        try:
            fields = _item_fields(request.POST)
            if not fields["title"]:
                raise ValidationError({"title": _("Give the title in at least one language.")})
            services.item_update(
                item=item, expected_version=int(request.POST.get("version") or 0) or None, **fields
            )
        except services.VersionConflict as exc:
            errors = [str(exc)]
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Item saved."))
            return redirect("catalogue:item", pk=item.pk)
    return render(
        request,
        "heritage/curator/item.html",
        {
            "item": item,
            "images": item.images.select_related("original").annotate(n_ann=Count("annotations")),
            "errors": errors,
            "form": _item_form_context(item, post),
            "max_bytes": settings.ATELIER_MAX_IMAGE_BYTES,
        },
        status=400 if errors else 200,
    )


@curator_required
@require_POST
def image_upload(request: HttpRequest, pk: int) -> HttpResponse:
    """The drop zone posts one file per request (XHR, for its progress bar): JSON back; the
    plain form (no JS) gets a redirect with messages."""
    item = get_object_or_404(HeritageItem, pk=pk)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    upload = request.FILES.get("file")
    try:
        if upload is None:
            raise ValidationError({"file": _("No file was submitted.")})
        image = services.item_image_create(
            item=item,
            content=upload,
            filename=upload.name,
            is_primary=request.POST.get("is_primary") == "on",
            user=request.user,
        )
    except ValidationError as exc:
        if wants_json:
            return JsonResponse(
                {"errors": error_messages(exc), "file": getattr(upload, "name", "")}, status=400
            )
        _fail(request, exc)
        return redirect("catalogue:item", pk=item.pk)
    if wants_json:
        return JsonResponse(
            {
                "id": image.pk,
                "file": image.original_filename,
                "size": f"{image.width} x {image.height} px",
                "url": reverse("catalogue:image", args=[image.pk]),
            },
            status=201,
        )
    messages.success(request, _("Image %(name)s added.") % {"name": image.original_filename})
    return redirect("catalogue:item", pk=item.pk)


# --- annotations ----------------------------------------------------------------------------

BROWSER_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


def _image_src(image: ItemImage) -> str | None:
    """What the browser can show: the display derivative, else a web-format original."""
    if image.display_id:
        return image.display_url
    if image.original_format in BROWSER_FORMATS:
        return image.original.url
    return None


def _region(post) -> tuple[int, int, int, int] | None:
    parts = [post.get(f"region_{k}", "").strip() for k in "xywh"]
    if not any(parts):
        return None
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValidationError(
            _("The region needs whole numbers of pixels for x, y, width and height (or none).")
        ) from None
    if any(v < 0 for v in values):
        raise ValidationError(_("A region's numbers cannot be negative."))
    return values  # type: ignore[return-value]


def _motifs(post) -> list[MotifTerm]:
    slugs = post.getlist("motifs")
    terms = list(MotifTerm.objects.filter(slug__in=slugs))
    missing = sorted(set(slugs) - {t.slug for t in terms})
    if missing:
        raise ValidationError(
            {"motifs": _("Unknown motif terms: %(s)s") % {"s": ", ".join(missing)}}
        )
    return terms


@curator_required
def image_detail(request: HttpRequest, pk: int) -> HttpResponse:
    image = get_object_or_404(ItemImage.objects.select_related("item", "original"), pk=pk)
    errors: list[str] = []
    if request.method == "POST":
        category = request.POST.get("category", "")
        try:
            if category not in SemioticAnnotation.Category.values:
                raise ValidationError({"category": _("Pick a category.")})
            services.annotation_create(
                image=image,
                category=category,
                motifs=_motifs(request.POST),
                region=_region(request.POST),
                meaning=langmap_from(request.POST, "meaning"),
                annotator=request.user,
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Annotation added."))
            return redirect("catalogue:image", pk=image.pk)
    annotations = list(image.annotations.prefetch_related("motifs"))
    for annotation in annotations:
        annotation.meaning_fields = lang_fields(
            f"meaning-{annotation.pk}", _("Meaning"), annotation.meaning
        )
        annotation.motif_slugs = {m.slug for m in annotation.motifs.all()}
    return render(
        request,
        "heritage/curator/image.html",
        {
            "image": image,
            "src": _image_src(image),
            "annotations": annotations,
            "categories": SemioticAnnotation.Category.choices,
            "motifs": MotifTerm.objects.all(),
            "errors": errors,
            "meaning_fields": lang_fields(
                "meaning", _("Meaning"), langmap_from(request.POST, "meaning") if errors else {}
            ),
            "posted": request.POST if errors else {},
        },
        status=400 if errors else 200,
    )


@curator_required
@require_POST
def annotation_edit(request: HttpRequest, pk: int) -> HttpResponse:
    annotation = get_object_or_404(SemioticAnnotation.objects.select_related("image"), pk=pk)
    if request.POST.get("action") == "delete":
        services.annotation_delete(annotation=annotation)
        messages.success(request, _("Annotation deleted."))
        return redirect("catalogue:image", pk=annotation.image_id)
    prefix = f"meaning-{annotation.pk}"
    category = request.POST.get("category", "")
    try:
        if category not in SemioticAnnotation.Category.values:
            raise ValidationError({"category": _("Pick a category.")})
        region = _region(request.POST)
        x, y, w, h = region if region else (None, None, None, None)
        services.annotation_update(
            annotation=annotation,
            motifs=_motifs(request.POST),
            expected_version=int(request.POST.get("version") or 0) or None,
            category=category,
            region_x=x,
            region_y=y,
            region_w=w,
            region_h=h,
            meaning=langmap_from(request.POST, prefix),
        )
    except services.VersionConflict as exc:
        messages.error(request, str(exc))
    except ValidationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, _("Annotation saved."))
    return redirect("catalogue:image", pk=annotation.image_id)


# --- motif vocabulary and passages --------------------------------------------------------


@curator_required
def motifs(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        slug = request.POST.get("slug", "").strip()
        label = langmap_from(request.POST, "label")
        try:
            if not slug:
                raise ValidationError(
                    {"slug": _("Give the term a slug (letters, digits, hyphens).")}
                )
            term = services.motif_term_get_or_create(slug=slug, label=label or None)
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Motif term %(slug)s saved.") % {"slug": term.slug})
            return redirect("catalogue:motifs")
    terms = MotifTerm.objects.annotate(n=Count("annotations"))
    for term in terms:
        term.fields = lang_fields(f"label-{term.slug}", _("Label"), term.label)
    return render(
        request,
        "heritage/curator/motifs.html",
        {"terms": terms, "errors": errors, "label_fields": lang_fields("label", _("Label"))},
        status=400 if errors else 200,
    )


@curator_required
@require_POST
def motif_edit(request: HttpRequest, slug: str) -> HttpResponse:
    term = get_object_or_404(MotifTerm, slug=slug)
    label = langmap_from(request.POST, f"label-{term.slug}")
    try:
        if not label:
            raise ValidationError({"label": _("Give the label in at least one language.")})
        services.motif_term_get_or_create(slug=term.slug, label=label)
    except ValidationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, _("Motif term %(slug)s saved.") % {"slug": term.slug})
    return redirect("catalogue:motifs")


PASSAGE_TEXT = (
    "source_work",
    "section",
    "original_text",
    "modern_paraphrase",
    "english_translation",
    "prompt_draft",
    "approved_prompt",
)


def _passage_fields(post) -> dict:
    fields = {name: post.get(name, "").strip() for name in PASSAGE_TEXT if name in post}
    fields["published"] = post.get("published") == "on"
    return fields


def _passage_items(post) -> list[HeritageItem]:
    accessions = [a.strip() for a in post.get("items", "").replace(",", " ").split() if a.strip()]
    found = list(HeritageItem.objects.filter(accession_number__in=accessions))
    missing = sorted(set(accessions) - {i.accession_number for i in found})
    if missing:
        raise ValidationError(
            {"items": _("Unknown accession numbers: %(s)s") % {"s": ", ".join(missing)}}
        )
    return found


@curator_required
def passages(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        try:
            passage = services.passage_create(
                items=_passage_items(request.POST), **_passage_fields(request.POST)
            )
        except ValidationError as exc:
            errors = error_messages(exc)
        else:
            messages.success(request, _("Passage added."))
            return redirect("catalogue:passage", pk=passage.pk)
    return render(
        request,
        "heritage/curator/passages.html",
        {
            "passages": GazetteerPassage.objects.prefetch_related("items"),
            "errors": errors,
            "form": request.POST if errors else {},
        },
        status=400 if errors else 200,
    )


@curator_required
def passage_detail(request: HttpRequest, pk: int) -> HttpResponse:
    passage = get_object_or_404(GazetteerPassage, pk=pk)
    errors: list[str] = []
    if request.method == "POST":
        fields = _passage_fields(request.POST)
        if request.POST.get("action") == "approve":
            # Approving the prompt: the text in the draft box becomes the approved prompt.
            fields["approved_prompt"] = request.POST.get("prompt_draft", "").strip()
            if not fields["approved_prompt"]:
                errors = [_("Write or draft a prompt before approving it.")]
        if not errors:
            try:
                services.passage_update(
                    passage=passage,
                    items=_passage_items(request.POST),
                    expected_version=int(request.POST.get("version") or 0) or None,
                    **fields,
                )
            except services.VersionConflict as exc:
                errors = [str(exc)]
            except ValidationError as exc:
                errors = error_messages(exc)
            else:
                messages.success(
                    request,
                    _("Prompt approved.")
                    if request.POST.get("action") == "approve"
                    else _("Passage saved."),
                )
                return redirect("catalogue:passage", pk=passage.pk)
    return render(
        request,
        "heritage/curator/passage.html",
        {
            "passage": passage,
            "form": request.POST if errors else None,
            "items": " ".join(passage.items.values_list("accession_number", flat=True)),
            "errors": errors,
        },
        status=400 if errors else 200,
    )


# --- bulk import --------------------------------------------------------------------------

TEMPLATE_ROWS = [
    {
        "accession_number": "ATL-0001",
        "collection": "atlas",
        "title_en": "Atlas silk, red and yellow",
        "title_zh": "艾德莱斯绸",
        "title_ug": "ئەتلەس",
        "period": "20th century",
        "place": "Khotan",
        "rights": "http://rightsstatements.org/vocab/InC/1.0/",
        "published": "false",
        "image": "atl-0001.jpg",
        "category": "iconographic",
        "motifs": "comb;almond",
        "meaning_en": "A comb motif, read as an icon of daily life",
        "region": "10,10,120,80",
    }
]


@curator_required
def import_template(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(
        bulk.rows_to_csv([bulk._complete(row) for row in TEMPLATE_ROWS]),
        content_type="text/csv; charset=utf-8",
    )
    response["Content-Disposition"] = 'attachment; filename="catalogue-import-template.csv"'
    return response


def _staging_root() -> Path:
    return Path(settings.MEDIA_ROOT).parent / STAGING


def _stage_images(files) -> str:
    """Keep a previewed import's images until the curator confirms (or a later preview)."""
    token = uuid.uuid4().hex
    folder = _staging_root() / token
    folder.mkdir(parents=True)
    for upload in files:
        name = Path(upload.name).name
        with open(folder / name, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    return token


def _staged_folder(request, token: str) -> Path | None:
    if not token or token != request.session.get("catalogue_import_staging"):
        return None
    folder = _staging_root() / token
    return folder if folder.is_dir() else None


@curator_required
def catalogue_import(request: HttpRequest) -> HttpResponse:
    """Upload a sheet (+ its images) → a dry-run preview of every row → confirm → import."""
    context: dict = {"columns": bulk.COLUMNS, "collections": Collection.objects.all()}
    if request.method != "POST":
        return render(request, "heritage/curator/import.html", context)
    confirm = request.POST.get("action") == "import"
    sheet_name = request.POST.get("sheet_name", "")
    if confirm:
        text = request.POST.get("sheet_text", "")
        token = request.POST.get("staging", "")
        folder = _staged_folder(request, token)
    else:
        upload = request.FILES.get("sheet")
        if upload is None:
            context["errors"] = [_("Choose a sheet (CSV or JSON) to import.")]
            return render(request, "heritage/curator/import.html", context, status=400)
        sheet_name = upload.name
        try:
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            context["errors"] = [_("The sheet is not UTF-8 text; save it as CSV UTF-8.")]
            return render(request, "heritage/curator/import.html", context, status=400)
        old = request.session.get("catalogue_import_staging")
        if old:
            shutil.rmtree(_staging_root() / old, ignore_errors=True)
        token = _stage_images(request.FILES.getlist("images"))
        request.session["catalogue_import_staging"] = token
        folder = _staging_root() / token
    file_format = "json" if sheet_name.lower().endswith(".json") else "csv"
    try:
        rows = bulk.parse_sheet(text, file_format=file_format)
    except ValidationError as exc:
        context["errors"] = error_messages(exc)
        return render(request, "heritage/curator/import.html", context, status=400)
    images = bulk.folder_images(folder or tempfile.gettempdir() + "/nonexistent-atelier")
    report = bulk.catalogue_import(rows=rows, images=images, user=request.user, dry_run=not confirm)
    context.update(
        report=report,
        outcomes=report.rows,
        dry_run=not confirm,
        sheet_text=text,
        sheet_name=sheet_name,
        staging=token,
        unknown_columns=sorted(
            {k for row in rows for k in row}
            - set(bulk.COLUMNS)
            - {"title", "description", "credit_line", "meaning"}
        ),
    )
    if confirm:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        request.session.pop("catalogue_import_staging", None)
    return render(request, "heritage/curator/import.html", context)


# --- training datasets ----------------------------------------------------------------------


# Checkboxes of the build form, passed to training_dataset_create as they are named.
BUILD_FLAGS = (
    "include_unpublished",
    "include_uncaptioned",
    "bucketing",
    "region_examples",
    "masked_loss",
)


def _flags(source) -> dict[str, bool]:
    return {name: source.get(name) == "on" for name in BUILD_FLAGS}


def _selection(source) -> dict[str, list[str]]:
    return {
        "collections": [s for s in source.getlist("collections") if s],
        "categories": [s for s in source.getlist("categories") if s],
        "motifs": [s for s in source.getlist("motifs") if s],
        "items": [a for a in source.get("items", "").replace(",", " ").split() if a],
    }


@curator_required
def datasets(request: HttpRequest) -> HttpResponse:
    errors: list[str] = []
    if request.method == "POST":
        try:
            fraction = float(request.POST.get("validation_fraction") or 0.1)
            resolution = int(request.POST.get("resolution") or 512)
        except ValueError:
            errors = [_("Resolution and validation fraction must be numbers.")]
        else:
            try:
                dataset = services.training_dataset_create(
                    name=request.POST.get("name", "").strip(),
                    trigger_token=request.POST.get("trigger_token", "").strip() or "[U]",
                    resolution=resolution,
                    validation_fraction=fraction,
                    description=request.POST.get("description", "").strip(),
                    caption_template=request.POST.get("caption_template", "").strip()
                    or services.DEFAULT_CAPTION_TEMPLATE,
                    user=request.user,
                    **_flags(request.POST),
                    **_selection(request.POST),
                )
            except ValidationError as exc:
                errors = error_messages(exc)
            else:
                messages.success(
                    request,
                    _("Draft dataset %(name)s made: check its captions, then freeze it.")
                    % {"name": dataset},
                )
                return redirect("catalogue:dataset", pk=dataset.pk)
    selection = (
        _selection(request.POST)
        if errors
        else {"collections": [], "categories": [], "motifs": [], "items": []}
    )
    return render(
        request,
        "heritage/curator/datasets.html",
        {
            "datasets": selectors.dataset_list(user=request.user),
            "errors": errors,
            "form": request.POST if errors else {},
            "selection": selection,
            "collections": Collection.objects.annotate(n_images=Count("items__images")),
            "categories": SemioticAnnotation.Category.choices,
            "motifs": MotifTerm.objects.all(),
            "count": selectors.dataset_selection_images(**selection).count(),
            "flags": _flags(request.POST) if errors else {"bucketing": True},
            "caption_template": request.POST.get("caption_template")
            if errors
            else services.DEFAULT_CAPTION_TEMPLATE,
            "caption_fields": services.CAPTION_FIELDS,
        },
        status=400 if errors else 200,
    )


@curator_required
def dataset_count(request: HttpRequest) -> HttpResponse:
    """htmx: how many images the selection on the form matches, as the curator ticks boxes."""
    selection = _selection(request.GET)
    images = selectors.dataset_selection_images(**selection)
    flags = _flags(request.GET)
    # The same rule the build applies: unpublished / un-captioned images are left out unless
    # the boxes ask for them (counted over at most 2,000 images: a live hint, not the build).
    left_out = services.dataset_exclusions(
        images.select_related("item__collection").prefetch_related("annotations__motifs")[:2000],
        template=request.GET.get("caption_template") or services.DEFAULT_CAPTION_TEMPLATE,
        trigger_token=request.GET.get("trigger_token") or "[U]",
        include_unpublished=flags["include_unpublished"],
        include_uncaptioned=flags["include_uncaptioned"],
    )
    count = images.count()
    return render(
        request,
        "heritage/curator/_dataset_count.html",
        {
            "count": count,
            "kept": count - len(left_out),
            "left_out": left_out,
            "items": images.values("item").distinct().count(),
            "annotated": images.filter(annotations__isnull=False).distinct().count(),
        },
    )


def _freeze_job(dataset: TrainingDataset):
    from jobs.models import Job

    if getattr(dataset, "freeze_job_id", None):
        return dataset.freeze_job
    return (
        Job.objects.filter(params__dataset_id=dataset.pk)
        .filter(Q(kind="heritage.derivatives") | Q(kind__contains="freeze"))
        .order_by("-created_at")
        .first()
    )


@curator_required
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(TrainingDataset, pk=pk)
    if (
        request.method == "POST"
        and not dataset.frozen
        and request.POST.get("action") == "recaption"
    ):
        try:
            services.training_dataset_recaption(
                dataset=dataset, caption_template=request.POST.get("caption_template", "")
            )
        except ValidationError as exc:
            _fail(request, exc)
        else:
            messages.success(request, _("Every whole-image caption rewritten from the template."))
        return redirect("catalogue:dataset", pk=dataset.pk)
    if request.method == "POST" and not dataset.frozen:
        changed, failed = 0, []
        for example in dataset.examples.all():
            caption = request.POST.get(f"caption-{example.pk}")
            split = request.POST.get(f"split-{example.pk}")
            if request.POST.get(f"remove-{example.pk}") == "on":
                services.training_example_remove(example=example)
                changed += 1
                continue
            if caption is None:
                continue
            if caption.strip() == example.caption and split == example.split:
                continue
            try:
                services.training_example_update(example=example, caption=caption, split=split)
                changed += 1
            except ValidationError as exc:
                failed.append(f"#{example.image_id}: " + " ".join(error_messages(exc)))
        for line in failed:
            messages.error(request, line)
        if changed:
            messages.success(request, _("%(n)d example(s) saved.") % {"n": changed})
        elif not failed:
            messages.info(request, _("Nothing changed."))
        return redirect("catalogue:dataset", pk=dataset.pk)
    examples = selectors.dataset_examples(dataset)
    return render(
        request,
        "heritage/curator/dataset.html",
        {
            "dataset": dataset,
            "examples": examples,
            "job": _freeze_job(dataset),
            "splits": TrainingExample.Split.choices,
            "versions": TrainingDataset.objects.filter(name=dataset.name).order_by("version"),
            "train_count": examples.filter(split="train").count(),
            "validation_count": examples.filter(split="validation").count(),
            "excluded": (dataset.selection or {}).get("excluded") or [],
            "caption_fields": services.CAPTION_FIELDS,
        },
    )


@curator_required
@require_POST
def dataset_freeze(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(TrainingDataset, pk=pk)
    try:
        services.training_dataset_request_freeze(dataset=dataset, user=request.user)
    except ValidationError as exc:
        _fail(request, exc)
    else:
        messages.success(request, _("Freezing: the crops are being made on a worker."))
    return redirect("catalogue:dataset", pk=dataset.pk)


@curator_required
def dataset_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """htmx: the freeze job's progress; polling stops once the dataset is frozen or failed."""
    dataset = get_object_or_404(TrainingDataset, pk=pk)
    response = render(
        request,
        "heritage/curator/_dataset_progress.html",
        {"dataset": dataset, "job": _freeze_job(dataset)},
    )
    if dataset.frozen:
        response["HX-Refresh"] = "true"  # show the frozen page (captions read-only, train link)
    return response


@curator_required
@require_POST
def dataset_new_version(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(TrainingDataset, pk=pk)
    draft = services.training_dataset_new_version(dataset=dataset, user=request.user)
    messages.success(
        request, _("Draft %(name)s made from %(old)s.") % {"name": draft, "old": dataset}
    )
    return redirect("catalogue:dataset", pk=draft.pk)
