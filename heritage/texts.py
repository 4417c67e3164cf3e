"""Category labels in English, Chinese and Uyghur (language maps, like the catalogue data,
so IIIF documents carry all three) and texts that know their language.

The kiosk's interface words are Django i18n strings (locale/*/LC_MESSAGES/django.po).
"""
# ruff: noqa: RUF001 - Chinese punctuation is intended

from __future__ import annotations

from typing import NamedTuple

from django.utils.translation import gettext_lazy

CATEGORY_LABELS: dict[str, dict[str, str]] = {
    "iconographic": {"en": "Iconographic", "zh": "图像性", "ug": "سۈرەتلىك"},
    "directional": {"en": "Directional", "zh": "方向性", "ug": "يۆنىلىشلىك"},
    "cultural_semiotic": {"en": "Cultural-semiotic", "zh": "文化符号", "ug": "مەدەنىيەت بەلگىسى"},
}
CATEGORY_HELP: dict[str, dict[str, str]] = {
    "iconographic": {
        "en": "Icons: the motif looks like a thing — a comb, an almond, a pomegranate.",
        "zh": "像似符：纹样看起来像某物——梳子、巴旦木、石榴。",
        "ug": "ئوخشاشلىق: نەقىش بىر نەرسىگە ئوخشايدۇ — تاغاق، بادام، ئانار.",
    },
    "directional": {
        "en": "Indexes: orientation, repetition and layout that point or lead the eye.",
        "zh": "指示符：方向、重复与布局引导视线。",
        "ug": "كۆرسەتكۈچ: يۆنىلىش، تەكرار ۋە ئورۇنلاشتۇرۇش كۆزنى يېتەكلەيدۇ.",
    },
    "cultural_semiotic": {
        "en": "Symbols: meaning by convention — luck, protection, abundance.",
        "zh": "象征符：约定俗成的意义——吉祥、护佑、丰饶。",
        "ug": "سىمۋول: ئادەت بويىچە مەنا — بەخت، ھىمايە، مولچىلىق.",
    },
}

LANGUAGE_NAMES = {
    "en": gettext_lazy("English"),
    "zh": gettext_lazy("Chinese"),
    "ug": gettext_lazy("Uyghur"),
}


class LangText(NamedTuple):
    """A catalogue text with the language it is really in; ``fallback`` when that is not the
    language asked for."""

    text: str
    lang: str
    fallback: bool = False

    def __bool__(self) -> bool:
        return bool(self.text)

    def __str__(self) -> str:
        return self.text


def lang_text(value: dict | None, lang: str, default: str = "") -> LangText:
    """``value[lang]``, else English, else any language, else ``default`` (a code, no
    language): always saying which language the text is in."""
    value = value or {}
    if value.get(lang):
        return LangText(value[lang], lang)
    for other in ("en", *sorted(value)):
        if value.get(other):
            return LangText(value[other], other, fallback=True)
    return LangText(default, "zxx")
