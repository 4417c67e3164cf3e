"""Template helpers of the kiosk: texts that carry their language, the kiosk's settings."""

from __future__ import annotations

import json

from django import template
from django.conf import settings
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language_bidi, gettext

from heritage.texts import LANGUAGE_NAMES, LangText

register = template.Library()


@register.simple_tag
def show(value: LangText | str | None, note: bool = True):
    """A catalogue text in its own language: ``<bdi lang dir>`` (isolated, so a Latin or Chinese
    value keeps its punctuation inside Uyghur text and vice versa). A fallback (the visitor's
    language is missing) is marked with a discreet note in the visitor's language."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    if not value.text:
        return ""
    direction = "rtl" if value.lang in settings.LANGUAGES_BIDI else "ltr"
    html = format_html(
        '<bdi lang="{}" dir="{}"{}>{}</bdi>',
        value.lang,
        direction,
        mark_safe(' class="fallback"') if value.fallback else "",
        value.text,
    )
    if value.fallback and note:
        name = LANGUAGE_NAMES.get(value.lang, value.lang)
        html += format_html(
            ' <small class="fallback-note">({})</small>',
            gettext("not translated yet, shown in %(language)s") % {"language": name},
        )
    return html


@register.simple_tag(takes_context=True)
def kiosk_config(context) -> str:
    """The idle reset's settings as JSON for <script type="application/json"> (data, not
    code: allowed by the strict CSP). WCAG 2.2.1: at least 20 s to answer the warning."""
    config = {
        "idle": settings.ATELIER_KIOSK_IDLE_SECONDS,
        "warning": max(20, settings.ATELIER_KIOSK_WARNING_SECONDS),
        "attract": bool(context.get("attract")),
        "rtl": get_language_bidi(),
    }
    return mark_safe(json.dumps(config).replace("<", "\\u003c"))  # noqa: S308 (numbers, bools)


@register.simple_tag
def kiosk_warning_seconds() -> int:
    return max(20, settings.ATELIER_KIOSK_WARNING_SECONDS)
