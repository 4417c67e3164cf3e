# ruff: noqa: RUF001 - Uyghur letters of the on-screen keyboard are intended
"""Kiosk pages for visitors: attract screen, browse (facets), categories, search, item pages.

Server-rendered, touch-first, no external assets. Interface words are Django i18n strings;
catalogue texts come from language maps in the active language (LocaleMiddleware: en / zh /
ug) as ``LangText``: the text with the language it is really in, so a fallback is marked.
"""

from __future__ import annotations

from csp.constants import NONCE
from csp.decorators import csp_update
from django.conf import settings
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from archives.downloads import stored_file_response
from heritage import selectors
from heritage.models import GazetteerPassage, HeritageItem, MotifTerm, SemioticAnnotation
from heritage.texts import CATEGORY_HELP, CATEGORY_LABELS, LangText, lang_text

CATEGORIES = [c.value for c in SemioticAnnotation.Category]
# The on-screen keyboards of the search page: what a visitor types titles and motifs with.
KEYBOARDS = {
    "en": ["qwertyuiop", "asdfghjkl", "zxcvbnm"],
    "zh": ["qwertyuiop", "asdfghjkl", "zxcvbnm"],
    # Uyghur (UEY): the 32 letters plus the hamza that starts a word with a vowel (ئا, ئە ...).
    "ug": [
        ["ئ", "ا", "ە", "ب", "پ", "ت", "ج", "چ", "خ", "د", "ر"],
        ["ز", "ژ", "س", "ش", "غ", "ف", "ق", "ك", "گ", "ڭ", "ل"],
        ["م", "ن", "ھ", "و", "ۇ", "ۆ", "ۈ", "ۋ", "ې", "ى", "ي"],
    ],
}


def _lang() -> str:
    lang = (get_language() or "en").split("-")[0]
    return lang if lang in ("en", "zh", "ug") else "en"


def _context(request, **extra) -> dict:
    return {"lang": _lang(), **extra}


def _category(slug: str, lang: str) -> dict:
    return {
        "slug": slug,
        "label": lang_text(CATEGORY_LABELS[slug], lang),
        "help": lang_text(CATEGORY_HELP[slug], lang),
    }


def _card(item: HeritageItem, lang: str) -> dict:
    image = item.primary_image
    return {
        "pk": item.pk,
        "title": lang_text(item.title, lang, item.accession_number),
        "period": item.period,
        "thumb": image and image.thumbnail_url,
        "thumb_w": image and image.thumbnail_width,
        "thumb_h": image and image.thumbnail_height,
    }


def _cards(items, lang: str) -> list[dict]:
    return [_card(item, lang) for item in items]


def _motifs_in_use(items) -> list[MotifTerm]:
    return list(
        MotifTerm.objects.filter(
            annotations__image__item__in=selectors.visible_item_list(user=None).filter(
                pk__in=items.values("pk")
            )
        ).distinct()
    )


@require_GET
def attract(request):
    """The attract screen: a slideshow; a touch anywhere begins (the pause button excepted)."""
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
            {"title": lang_text(item.title, lang, item.accession_number), "src": image.display_url}
        )
    return render(request, "heritage/attract.html", _context(request, slides=slides, attract=True))


@require_GET
def browse(request):
    """Collections with pictures, and every visible object filtered by facets: collection,
    Peirce category, motif (links, so the back button and the idle reset keep working)."""
    lang = _lang()
    visible = selectors.item_list(user=None)
    collections = []
    for c in selectors.collection_list(user=None):
        first = next(iter(visible.filter(collection=c)[:1]), None)
        collections.append(
            {
                "slug": c.slug,
                "title": lang_text(c.title, lang, c.slug),
                "description": lang_text(c.description, lang),
                "thumb": first and first.primary_image and first.primary_image.thumbnail_url,
            }
        )
    chosen = {
        "collection": request.GET.get("collection", "")[:100],
        "category": request.GET.get("category", "")[:50],
        "motif": request.GET.get("motif", "")[:100],
    }
    items = visible
    if chosen["collection"]:
        items = items.filter(collection__slug=chosen["collection"])
    if chosen["category"] in CATEGORIES:
        items = selectors.items_with_category(items, chosen["category"])
    else:
        chosen["category"] = ""
    if chosen["motif"]:
        items = selectors.items_with_motif(items, chosen["motif"])

    def facet_url(**change) -> str:
        query = {**chosen, **change}
        parts = [f"{k}={v}" for k, v in query.items() if v]
        return "/browse/" + ("?" + "&".join(parts) if parts else "") + "#objects"

    facets = {
        "collection": [
            {
                "label": c["title"],
                "url": facet_url(collection=c["slug"]),
                "on": c["slug"] == chosen["collection"],
                "slug": c["slug"],
            }
            for c in collections
        ],
        "category": [
            {
                "label": _category(slug, lang)["label"],
                "url": facet_url(category=slug),
                "on": slug == chosen["category"],
                "slug": slug,
            }
            for slug in CATEGORIES
        ],
        "motif": [
            {
                "label": lang_text(m.label, lang, m.slug),
                "url": facet_url(motif=m.slug),
                "on": m.slug == chosen["motif"],
                "slug": m.slug,
            }
            for m in _motifs_in_use(visible)
        ],
    }
    filtered = any(chosen.values())
    return render(
        request,
        "heritage/browse.html",
        _context(
            request,
            collections=collections,
            categories=[_category(c, lang) for c in CATEGORIES],
            facets=facets,
            filtered=filtered,
            clear_url="/browse/#objects",
            cards=_cards(items, lang),
        ),
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
            heading=lang_text(coll.title, lang, coll.slug),
            intro=lang_text(coll.description, lang),
            cards=_cards(items, lang),
        ),
    )


@require_GET
def category(request, category: str):
    if category not in CATEGORIES:
        raise Http404("No such category.")
    lang = _lang()
    items = selectors.items_with_category(selectors.item_list(user=None), category)
    info = _category(category, lang)
    return render(
        request,
        "heritage/item_list.html",
        _context(request, heading=info["label"], intro=info["help"], cards=_cards(items, lang)),
    )


@require_GET
def search(request):
    """Search by typing (an on-screen keyboard in the visitor's script) or by a chip: motifs
    and ways of reading, no keyboard at all."""
    lang = _lang()
    query = request.GET.get("q", "").strip()[:200]
    items = selectors.item_search(selectors.item_list(user=None), query) if query else []
    visible = selectors.item_list(user=None)
    chips = [
        {"label": lang_text(m.label, lang, m.slug), "url": f"/browse/?motif={m.slug}#objects"}
        for m in _motifs_in_use(visible)
    ] + [
        {"label": _category(c, lang)["label"], "url": f"/browse/?category={c}#objects"}
        for c in CATEGORIES
    ]
    keyboard = [list(row) for row in KEYBOARDS.get(lang, KEYBOARDS["en"])]
    return render(
        request,
        "heritage/search.html",
        _context(
            request,
            query=query,
            cards=_cards(items, lang),
            searched=bool(query),
            chips=chips,
            keyboard=keyboard,
        ),
    )


def passage_text(passage: GazetteerPassage, lang: str) -> LangText:
    """The reading of a passage in the visitor's language: the modern paraphrase in Chinese,
    the English translation, a translation from ``translations``; else a marked fallback."""
    readings = {**(passage.translations or {})}
    if passage.english_translation:
        readings["en"] = passage.english_translation
    if passage.modern_paraphrase:
        readings["zh"] = passage.modern_paraphrase
    return lang_text(readings, lang)


def _annotation(annotation: SemioticAnnotation, number: int, image, lang: str) -> dict:
    region = annotation.region
    return {
        "pk": annotation.pk,
        "number": number,
        "category": _category(annotation.category, lang),
        "meaning": lang_text(annotation.meaning, lang),
        "motifs": [lang_text(m.label, lang, m.slug) for m in annotation.motifs.all()],
        # Image pixels (the viewer's coordinates) and percentages (the picture without script).
        "region": region and {"x": region[0], "y": region[1], "w": region[2], "h": region[3]},
        "box": region
        and {
            "left": round(100 * region[0] / image.width, 3),
            "top": round(100 * region[1] / image.height, 3),
            "width": round(100 * region[2] / image.width, 3),
            "height": round(100 * region[3] / image.height, 3),
        },
    }


def _companion(generated, item: HeritageItem, lang: str) -> dict:
    """An approved LoRA image, captioned from its passage (or the object it was made for) in
    the visitor's language: never the prompt, whose trigger token means nothing to anyone."""
    passage = generated.passage
    if passage is not None and passage.published:
        caption = passage_text(passage, lang)
    else:
        caption = lang_text(item.title, lang, item.accession_number)
    return {"pk": generated.pk, "caption": caption, "from_passage": passage is not None}


# OpenSeadragon adds an inline <style> unless it finds one marked data-openseadragon-mobile-css:
# the item page carries an empty marker with this response's nonce (style elements only).
@csp_update({"style-src": [NONCE]})
@require_GET
def item(request, pk: int):
    lang = _lang()
    obj = get_object_or_404(selectors.item_list(user=None), pk=pk)
    image = obj.primary_image
    annotations = []
    if image is not None:
        for number, annotation in enumerate(image.annotations.all(), start=1):
            annotations.append(_annotation(annotation, number, image, lang))
    passages = [
        {
            "source": p.source_work,
            "section": p.section,
            "original": p.original_text,
            "text": passage_text(p, lang),
        }
        for p in obj.passages.filter(published=True)
    ]
    companions = [
        _companion(g, obj, lang)
        for g in selectors.generated_companions(obj)
        if getattr(g, "condition", "lora") == "lora"
    ]
    display = viewer = None
    if image is not None and image.display_id:
        display = {
            "src": image.display_url,
            "width": image.display_width,
            "height": image.display_height,
            "aspect": round(image.display_width / image.display_height, 4),
        }
        viewer = {
            "info": reverse("iiif:image-info", args=[image.pk]),
            "manifest": reverse("iiif:manifest", args=[obj.pk]),
            "width": image.width,
            "height": image.height,
        }
    return render(
        request,
        "heritage/item.html",
        _context(
            request,
            item=obj,
            title=lang_text(obj.title, lang, obj.accession_number),
            description=lang_text(obj.description, lang),
            credit=lang_text(obj.credit_line, lang),
            display=display,
            viewer=viewer,
            annotations=annotations,
            passages=passages,
            companions=companions,
            back_url=f"/collections/{obj.collection.slug}/",
        ),
    )


@require_GET
def companion_image(request, pk: int):
    """The file of an approved LoRA image of a published item."""
    from django.apps import apps

    try:
        model = apps.get_model("generation", "GeneratedImage")
    except LookupError:
        raise Http404("No generated images here.") from None
    generated = get_object_or_404(
        model.objects.select_related("file"),
        pk=pk,
        approved=True,
        condition="lora",
        item__published=True,
        item__collection__published=True,
    )
    return stored_file_response(
        request, generated.file, public=True, filename=f"ai-generated-{generated.pk}.png"
    )
