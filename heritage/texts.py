"""Interface words of the kiosk and IIIF labels in English, Chinese and Uyghur.

Kept as language maps (like the catalogue data) so the kiosk works without compiled gettext
catalogues; ``ui(lang)`` falls back to English for anything missing.
"""
# ruff: noqa: RUF001 - Chinese punctuation is intended

from __future__ import annotations

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

UI: dict[str, dict[str, str]] = {
    "site": {"en": "Heritage kiosk", "zh": "文化遗产导览", "ug": "مىراس كۆرگەزمىسى"},
    "touch_to_begin": {"en": "Touch to begin", "zh": "轻触开始", "ug": "باشلاش ئۈچۈن بېسىڭ"},
    "pause": {"en": "Pause slideshow", "zh": "暂停播放", "ug": "توختىتىش"},
    "play": {"en": "Play slideshow", "zh": "继续播放", "ug": "قويۇش"},
    "home": {"en": "Home", "zh": "首页", "ug": "باش بەت"},
    "collections": {"en": "Collections", "zh": "藏品系列", "ug": "توپلاملار"},
    "categories": {
        "en": "Ways of reading a pattern",
        "zh": "解读纹样的方式",
        "ug": "نەقىشنى ئوقۇش ئۇسۇللىرى",
    },
    "search": {"en": "Search", "zh": "搜索", "ug": "ئىزدەش"},
    "search_label": {"en": "Search the collection", "zh": "搜索藏品", "ug": "توپلامدىن ئىزدەش"},
    "results": {"en": "Results", "zh": "结果", "ug": "نەتىجىلەر"},
    "no_results": {"en": "Nothing found.", "zh": "没有找到。", "ug": "ھېچنېمە تېپىلمىدى."},
    "items": {"en": "Objects", "zh": "藏品", "ug": "بۇيۇملار"},
    "annotations": {"en": "What the pattern says", "zh": "纹样的含义", "ug": "نەقىشنىڭ مەنىسى"},
    "show_regions": {"en": "Highlight regions", "zh": "标出区域", "ug": "رايونلارنى كۆرسىتىش"},
    "ai_companions": {
        "en": "AI-generated companions",
        "zh": "人工智能生成的伴生图像",
        "ug": "سۈنئىي ئەقىل ياسىغان ھەمراھ رەسىملەر",
    },
    "ai_label": {"en": "AI-generated", "zh": "人工智能生成", "ug": "سۈنئىي ئەقىل ياسىغان"},
    "ai_note": {
        "en": "Made by an image model trained on this collection and approved by a curator. "
        "Not a historical object.",
        "zh": "由以本馆藏训练的图像模型生成，经策展人审核。并非历史文物。",
        "ug": "بۇ توپلامدا مەشىق قىلىنغان مودېل ياسىغان، كۇراتور تەستىقلىغان. تارىخىي بۇيۇم ئەمەس.",
    },
    "passages": {"en": "From the gazetteer", "zh": "方志选段", "ug": "تەزكىرىدىن"},
    "period": {"en": "Period", "zh": "年代", "ug": "دەۋر"},
    "place": {"en": "Place", "zh": "地点", "ug": "ئورۇن"},
    "credit": {"en": "Credit", "zh": "致谢", "ug": "مىننەتدارلىق"},
    "rights": {"en": "Rights", "zh": "权利", "ug": "ھوقۇق"},
    "motifs": {"en": "Motifs", "zh": "纹样元素", "ug": "نەقىش ئېلېمېنتلىرى"},
    "back": {"en": "Back", "zh": "返回", "ug": "قايتىش"},
    "language": {"en": "Language", "zh": "语言", "ug": "تىل"},
    "idle_title": {"en": "Are you still there?", "zh": "您还在吗？", "ug": "سىز يەنىلا بارمۇ؟"},
    "idle_text": {
        "en": "The kiosk will return to the start in",
        "zh": "导览将在以下时间后回到开始页面：",
        "ug": "كۆرگەزمە باشلىنىشقا قايتىدۇ:",
    },
    "seconds": {"en": "seconds.", "zh": "秒。", "ug": "سېكۇنت."},
    "continue": {"en": "Continue", "zh": "继续浏览", "ug": "داۋاملاشتۇرۇش"},
    "image_of": {"en": "Image of", "zh": "图像：", "ug": "رەسىم:"},
    "empty": {"en": "Nothing here yet.", "zh": "暂无内容。", "ug": "تېخى ھېچنېمە يوق."},
    "region": {"en": "Region", "zh": "区域", "ug": "رايون"},
}


def ui(lang: str) -> dict[str, str]:
    return {key: texts.get(lang) or texts["en"] for key, texts in UI.items()}
