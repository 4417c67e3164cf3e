"""Kiosk pages for visitors: attract screen, browse, categories, search, item pages.

Server-rendered, touch-first, no external assets. Text comes from language maps in the
active language (LocaleMiddleware: en / zh / ug) with English as the fallback.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from archives.downloads import stored_file_response
from heritage import selectors
from heritage.models import SemioticAnnotation, langmap_get
from heritage.texts import CATEGORY_HELP, CATEGORY_LABELS, ui

CATEGORIES = [c.value for c in SemioticAnnotation.Category]


def _lang() -> str:
    lang = (get_language() or "en").split("-")[0]
    return lang if lang in ("en", "zh", "ug") else "en"


def _context(request, **extra) -> dict:
    lang = _lang()
    return {
        "lang": lang,
        "t": ui(lang),
        "kiosk_idle_seconds": settings.ATELIER_KIOSK_IDLE_SECONDS,
        # WCAG 2.2.1: at least 20 s to answer the warning.
        "kiosk_warning_seconds": max(20, settings.ATELIER_KIOSK_WARNING_SECONDS),
        "kiosk_languages": [("en", "English"), ("zh", "中文"), ("ug", "ئۇيغۇرچە")],
        **extra,
    }


def _card(item, lang: str) -> dict:
    image = item.primary_image
    return {
        "pk": item.pk,
        "title": item.title_in(lang),
        "period": item.period,
        "thumb": image and image.thumbnail_url,
        "thumb_w": image and image.thumbnail_width,
        "thumb_h": image and image.thumbnail_height,
    }


def _cards(items, lang: str) -> list[dict]:
    return [_card(item, lang) for item in items]


@require_GET
def attract(request):
    """The attract screen: a slideshow the visitor touches to begin (pausable)."""
    if request.GET.get("reset"):
        # Idle reset: forget the previous visitor's language, then show the attract screen.
        response = HttpResponseRedirect("/")
        response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    lang = _lang()
    slides = []
    for item in selectors.item_list(user=None)[:8]:
        image = item.primary_image
        if image is None or not image.display_id:
            continue
        slides.append(
            {
                "title": item.title_in(lang),
                "src": image.display_url,
                "pk": item.pk,
            }
        )
    return render(request, "heritage/attract.html", _context(request, slides=slides, attract=True))


@require_GET
def browse(request):
    lang = _lang()
    collections = [
        {"slug": c.slug, "title": c.title_in(lang), "description": langmap_get(c.description, lang)}
        for c in selectors.collection_list(user=None)
    ]
    categories = [
        {
            "slug": c,
            "label": CATEGORY_LABELS[c].get(lang) or CATEGORY_LABELS[c]["en"],
            "help": CATEGORY_HELP[c].get(lang) or CATEGORY_HELP[c]["en"],
        }
        for c in CATEGORIES
    ]
    return render(
        request,
        "heritage/browse.html",
        _context(request, collections=collections, categories=categories),
    )


@require_GET
def collection(request, slug: str):
    lang = _lang()
    coll = get_object_or_404(selectors.collection_list(user=None), slug=slug)
    items = selectors.item_list(user=None).filter(collection=coll)
    return render(
        request,
        "heritage/item_list.html",
        _context(
            request,
            heading=coll.title_in(lang),
            intro=langmap_get(coll.description, lang),
            cards=_cards(items, lang),
        ),
    )


@require_GET
def category(request, category: str):
    if category not in CATEGORIES:
        raise Http404("No such category.")
    lang = _lang()
    items = selectors.items_with_category(selectors.item_list(user=None), category)
    return render(
        request,
        "heritage/item_list.html",
        _context(
            request,
            heading=CATEGORY_LABELS[category].get(lang) or CATEGORY_LABELS[category]["en"],
            intro=CATEGORY_HELP[category].get(lang) or CATEGORY_HELP[category]["en"],
            cards=_cards(items, lang),
        ),
    )


@require_GET
def search(request):
    lang = _lang()
    query = request.GET.get("q", "").strip()[:200]
    items = selectors.item_search(selectors.item_list(user=None), query) if query else []
    return render(
        request,
        "heritage/search.html",
        _context(request, query=query, cards=_cards(items, lang), searched=bool(query)),
    )


@require_GET
def item(request, pk: int):
    lang = _lang()
    obj = get_object_or_404(selectors.item_list(user=None), pk=pk)
    image = obj.primary_image
    annotations = []
    if image is not None:
        for annotation in image.annotations.all():
            region = annotation.region
            annotations.append(
                {
                    "pk": annotation.pk,
                    "category": annotation.category,
                    "category_label": CATEGORY_LABELS[annotation.category].get(lang)
                    or CATEGORY_LABELS[annotation.category]["en"],
                    "meaning": langmap_get(annotation.meaning, lang),
                    "motifs": [m.label_in(lang) for m in annotation.motifs.all()],
                    # Percentages of the image, so the overlay scales with the picture.
                    "box": region
                    and {
                        "left": round(100 * region[0] / image.width, 3),
                        "top": round(100 * region[1] / image.height, 3),
                        "width": round(100 * region[2] / image.width, 3),
                        "height": round(100 * region[3] / image.height, 3),
                    },
                }
            )
    passages = [
        {
            "source": p.source_work,
            "section": p.section,
            "original": p.original_text,
            "text": p.modern_paraphrase if lang == "zh" else p.english_translation,
        }
        for p in obj.passages.filter(published=True)
    ]
    companions = [{"pk": g.pk, "prompt": g.prompt} for g in selectors.generated_companions(obj)]
    display = None
    if image is not None and image.display_id:
        display = {
            "src": image.display_url,
            "width": image.display_width,
            "height": image.display_height,
            "aspect": round(image.display_width / image.display_height, 4),
        }
    return render(
        request,
        "heritage/item.html",
        _context(
            request,
            item=obj,
            title=obj.title_in(lang),
            description=langmap_get(obj.description, lang),
            credit=langmap_get(obj.credit_line, lang),
            display=display,
            annotations=annotations,
            passages=passages,
            companions=companions,
            back_url=f"/collections/{obj.collection.slug}/",
        ),
    )


@require_GET
def companion_image(request, pk: int):
    """The file of an approved AI-generated image of a published item."""
    from django.apps import apps

    try:
        model = apps.get_model("generation", "GeneratedImage")
    except LookupError:
        raise Http404("No generated images here.") from None
    generated = get_object_or_404(
        model.objects.select_related("file"),
        pk=pk,
        approved=True,
        item__published=True,
        item__collection__published=True,
    )
    return stored_file_response(
        request, generated.file, public=True, filename=f"ai-generated-{generated.pk}.png"
    )
