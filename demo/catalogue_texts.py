# ruff: noqa: RUF001 - Chinese punctuation and Uyghur letters are intended
"""Chinese and Uyghur texts of the demo catalogue (written for Atelier; English stays the
corpus's own, since the training captions are made from it).

The corpus builds its English from a few templates (motifs, palette colours, landscape
elements); the functions here build the same sentences in Chinese and Uyghur from the same
parts, and give ``None`` for a language when a part is unknown, so a visitor then sees the
English marked as a fallback rather than a half-translated sentence.
"""

from __future__ import annotations

import re

MOTIFS: dict[str, dict[str, str]] = {
    "atlas": {"zh": "艾德莱斯绸", "ug": "ئەتلەس"},
    "warp-band": {"zh": "经向色带", "ug": "تىك ئۆرۈش بەلۋېغى"},
    "ikat-edge": {"zh": "扎经晕染边缘", "ug": "ئەتلەس بويىقىنىڭ تۈكسىمان قىرى"},
    "mirror-symmetry": {"zh": "镜像对称", "ug": "ئەينەك سىممېترىيىسى"},
    "lozenge": {"zh": "菱形纹", "ug": "رومبا"},
    "comb": {"zh": "梳子纹", "ug": "تاغاق"},
    "tassel": {"zh": "流苏纹", "ug": "چاچاق"},
    "fence": {"zh": "栅栏纹", "ug": "چىتلاق"},
    "almond": {"zh": "巴旦木纹", "ug": "بادام"},
    "mountain": {"zh": "山", "ug": "تاغ"},
    "water": {"zh": "水", "ug": "سۇ"},
    "mist": {"zh": "云雾", "ug": "تۇمان"},
    "pavilion": {"zh": "亭", "ug": "كۆشك"},
    "boat": {"zh": "舟", "ug": "كېمە"},
    "circle": {"zh": "圆", "ug": "چەمبەر"},
    "square": {"zh": "方块", "ug": "كۋادرات"},
    "triangle": {"zh": "三角", "ug": "ئۈچبۇلۇڭ"},
    "stripes": {"zh": "条纹", "ug": "يول-يول سىزىق"},
    "grid": {"zh": "网格", "ug": "كاتەكچە"},
    "sun": {"zh": "太阳", "ug": "قۇياش"},
    "house": {"zh": "房屋", "ug": "ئۆي"},
    "tree": {"zh": "树", "ug": "دەرەخ"},
}
PALETTES = {
    "khan atlas": {"zh": "汗艾德莱斯", "ug": "خان ئەتلەس"},
    "golden atlas": {"zh": "金色艾德莱斯", "ug": "ئالتۇنرەڭ ئەتلەس"},
    "indigo atlas": {"zh": "靛蓝艾德莱斯", "ug": "نىل كۆك ئەتلەس"},
    "pomegranate atlas": {"zh": "石榴红艾德莱斯", "ug": "ئانار رەڭ ئەتلەس"},
}
COLOURS = {
    "crimson": {"zh": "深红", "ug": "تۇق قىزىل"},
    "saffron": {"zh": "橙黄", "ug": "زەپەر سېرىق"},
    "emerald": {"zh": "翠绿", "ug": "زۇمرەت يېشىل"},
    "indigo": {"zh": "靛蓝", "ug": "نىل كۆك"},
    "ivory": {"zh": "象牙白", "ug": "پىل چىشى ئاق"},
    "black": {"zh": "黑", "ug": "قارا"},
    "golden yellow": {"zh": "金黄", "ug": "ئالتۇن سېرىق"},
    "scarlet": {"zh": "猩红", "ug": "ئال قىزىل"},
    "magenta": {"zh": "品红", "ug": "سۆسۈن قىزىل"},
    "sky blue": {"zh": "天蓝", "ug": "ئاسمان كۆك"},
    "pomegranate red": {"zh": "石榴红", "ug": "ئانار قىزىل"},
    "leaf green": {"zh": "叶绿", "ug": "يوپۇرماق يېشىل"},
}
# The parts of a landscape caption ("ink landscape on silk, layered ink mountains, ...").
LANDSCAPE_PARTS = {
    "ink landscape on silk": {"zh": "绢本水墨山水", "ug": "يىپەككە سىزىلغان سىياھ مەنزىرە"},
    "hanging scroll": {"zh": "挂轴", "ug": "ئاسما ئورام رەسىم"},
    "handscroll": {"zh": "手卷", "ug": "قول ئورام رەسىم"},
    "layered ink mountains": {"zh": "层叠的水墨群山", "ug": "قات-قات سىياھ تاغلار"},
    "layered blue-green mountains": {"zh": "层叠的青绿群山", "ug": "قات-قات كۆك-يېشىل تاغلار"},
    "drifting mist": {"zh": "飘动的云雾", "ug": "لەيلەپ يۈرگەن تۇمان"},
    "a calm river": {"zh": "平静的河流", "ug": "تىنچ دەريا"},
    "a pavilion on the slope": {"zh": "山坡上的亭子", "ug": "يانتۇدىكى كۆشك"},
    "a boat on the water": {"zh": "水上的小舟", "ug": "سۇ ئۈستىدىكى كېمە"},
}
MEANINGS = {
    "Warp bands run the length of the cloth, mirrored about the centre; the motif edges are "
    "feathered along the warp, as in ikat dyeing.": {
        "zh": "经向色带贯穿整匹布，以中线为轴镜像对称；纹样边缘沿经线晕开，这正是扎经染色的特点。",
        "ug": "ئۆرۈش بەلۋاغلىرى رەختنىڭ ئۇزۇنىغا سوزۇلۇپ، ئوتتۇرا سىزىققا نىسبەتەن ئەينەكتەك "
        "سىممېترىيىلىك؛ نەقىش قىرلىرى ئۆرۈش يىپى بويلاپ تۈكسىمان يېيىلىدۇ، بۇ ئەتلەس بوياش "
        "ئۇسۇلىنىڭ ئالاھىدىلىكى.",
    },
    "Stacked lozenges, often read as protective eyes, guard the wearer.": {
        "zh": "层层叠叠的菱形纹常被解读为护佑之眼，守护着穿着者。",
        "ug": "قات-قات رومبا نەقىشلىرى كۆپىنچە قوغدىغۇچى كۆز دەپ ئوقۇلىدۇ، "
        "ئۇلار كىيگۈچىنى ساقلايدۇ.",
    },
    "The comb is read as a sign of beauty, care and a well-kept household.": {
        "zh": "梳子纹被解读为美丽、细心与持家有方的象征。",
        "ug": "تاغاق گۈزەللىك، كۆڭۈل بۆلۈش ۋە رەتلىك ئائىلىنىڭ بەلگىسى دەپ ئوقۇلىدۇ.",
    },
    "Tassels are read as amulets that turn away misfortune.": {
        "zh": "流苏纹被解读为驱除厄运的护身符。",
        "ug": "چاچاقلار بالايىئاپەتنى قايتۇرىدىغان تۇمار دەپ ئوقۇلىدۇ.",
    },
    "The fence marks a boundary and is read as protection of home and family.": {
        "zh": "栅栏纹标示边界，被解读为对家园与家人的保护。",
        "ug": "چىتلاق چېگرىنى بەلگىلەيدۇ ۋە ئۆي-ئائىلىنى قوغداش دەپ ئوقۇلىدۇ.",
    },
    "The almond (bodom) is read as a sign of abundance and fertility.": {
        "zh": "巴旦木纹被解读为富足与多子多福的象征。",
        "ug": "بادام مولچىلىق ۋە پەرزەنتلىك بولۇشنىڭ بەلگىسى دەپ ئوقۇلىدۇ.",
    },
    "A band of mist separates the ranges.": {
        "zh": "一带云雾隔开了山峦。",
        "ug": "بىر بەلۋاغ تۇمان تاغ تىزمىلىرىنى ئايرىپ تۇرىدۇ.",
    },
    "Still water with ripple strokes.": {
        "zh": "以波纹笔触描绘的静水。",
        "ug": "دولقۇن سىزىقلىرى بىلەن سىزىلغان تىنچ سۇ.",
    },
    "A pavilion with upturned eaves on the near slope.": {
        "zh": "近处山坡上有一座飞檐亭子。",
        "ug": "يېقىن يانتۇدا ئۆگزە قىرلىرى يۇقىرىغا قايرىلغان بىر كۆشك بار.",
    },
    "A pavilion is a place for viewing the landscape and for retreat.": {
        "zh": "亭是观景与隐居之所。",
        "ug": "كۆشك مەنزىرە تاماشا قىلىدىغان ۋە خىلۋەتتە ئارام ئالىدىغان جاي.",
    },
    "A small sailing boat.": {"zh": "一叶小帆船。", "ug": "كىچىك بىر يەلكەنلىك كېمە."},
    "A lone boat evokes the recluse who lives by the water.": {
        "zh": "孤舟令人想起临水而居的隐士。",
        "ug": "يالغۇز كېمە سۇ بويىدا ياشايدىغان تەركىدۇنيانى ئەسلىتىدۇ.",
    },
    "Ranges recede from near and dark to far and pale; the eye climbs upward.": {
        "zh": "山峦由近而远、由深而淡，视线随之向上攀升。",
        "ug": "تاغ تىزمىلىرى يېقىندىكى قېنىقتىن يىراقتىكى سۇسقا قاراپ چېكىنىدۇ؛ "
        "كۆز يۇقىرىغا ئۆرلەيدۇ.",
    },
    # The Pillow fallback drawings (no corpus).
    "A lozenge on the axis of the cloth.": {
        "zh": "布料中轴线上的一个菱形纹。",
        "ug": "رەختنىڭ ئوق سىزىقىدىكى بىر رومبا.",
    },
    "Vertical warp bands lead the eye upward.": {
        "zh": "纵向的经向色带引导视线向上。",
        "ug": "تىك ئۆرۈش بەلۋاغلىرى كۆزنى يۇقىرىغا يېتەكلەيدۇ.",
    },
    "Mountains above water.": {"zh": "水上群山。", "ug": "سۇ ئۈستىدىكى تاغلار."},
}
# Uyghur readings of the demo gazetteer passages (keyed by section), from the classical
# Chinese and its English translation.
PASSAGES_UG = {
    "Geography · Mountains": "يېشىل تاغ ناھىيە بازىرىنىڭ غەربىدە ئوتتۇز لى يىراقلىقتا؛ تاغ "
    "تىزمىلىرى قات-قات، تۇمان گاھ كۆتۈرۈلۈپ گاھ يوقىلىدۇ؛ يىراقتىن قارىغاندا خۇددى قاتلىما "
    "پەردىدەك تۇرىدۇ.",
    "Geography · Rivers": "سۈزۈك ئېقىن يېشىل تاغنىڭ شىمالىي يېنىدىن باشلىنىپ، شەرققە قاراپ "
    "ئېقىپ كۆلگە قۇيۇلىدۇ؛ سۈيى ئەينەكتەك تىنچ، بېلىقچىلار كېمىسى كېلىپ-كېتىپ تۇرىدۇ.",
    "Antiquities · Pavilions": "بۇلۇتقا قاراش كۆشكى يېشىل تاغنىڭ يېرىم بېلىدە، مىڭ سۇلالىسى "
    "دەۋرىدە شەھەر ئاھالىسى سالغان؛ ئۇنىڭدىن پۈتۈن كۆل كۆرۈنىدۇ.",
    "Customs · Seasons": "ھەر يىلى كۈزنىڭ ئوچۇق كۈنلىرىدە شەھەر ئاھالىسى كۆلدە قولۋاق ئۈزىدۇ؛ "
    "يىراقتىكى تاغلار سۈرمە سۈرتۈلگەن قاشتەك قارامتۇل، كەچلىك تۇمان ھەر تەرەپتىن قورشاپ كېلىدۇ.",
}

_EN_MOTIF = {
    "Atlas silk": "atlas",
    "lozenge": "lozenge",
    "comb": "comb",
    "tassel": "tassel",
    "fence": "fence",
    "almond (bodom)": "almond",
    "mountain": "mountain",
    "water": "water",
    "mist": "mist",
    "pavilion": "pavilion",
    "boat": "boat",
}
_JOIN = {"zh": "、", "ug": "، "}


def _join(words: list[str], lang: str) -> str:
    if lang == "ug" and len(words) > 1:
        return "، ".join(words[:-1]) + " ۋە " + words[-1]
    return _JOIN[lang].join(words)


def _motifs(slugs: list[str], lang: str) -> str | None:
    if not slugs or any(s not in MOTIFS for s in slugs):
        return None
    return _join([MOTIFS[s][lang] for s in slugs], lang)


def meaning(english: str) -> dict[str, str]:
    """The reading in zh and ug (empty when this sentence is not one the corpus writes)."""
    if english in MEANINGS:
        return dict(MEANINGS[english])
    if match := re.fullmatch(r"A column of (.+) motifs\.", english):
        slug = _EN_MOTIF.get(match.group(1))
        if slug:
            return {
                "zh": f"一列{MOTIFS[slug]['zh']}。",
                "ug": f"بىر قاتار {MOTIFS[slug]['ug']} نەقىشى.",
            }
    if match := re.fullmatch(r"(\d+) ranges of mountains, paler as they recede\.", english):
        n = match.group(1)
        return {
            "zh": f"{n}重山峦，越远越淡。",
            "ug": f"{n} قات تاغ تىزمىسى، يىراقلاشقانسېرى سۇسلىشىدۇ.",
        }
    return {}


def _iconic_motifs(sample) -> list[str]:
    seen: list[str] = []
    for annotation in sample.annotations:
        if annotation.category == "iconographic":
            for slug in annotation.motifs:
                if slug not in seen:
                    seen.append(slug)
    return seen


def title(sample) -> dict[str, str]:
    """zh and ug titles (the corpus gives en and zh)."""
    out: dict[str, str] = {}
    motifs = _iconic_motifs(sample)
    if sample.style == "atlas":
        palette = re.search(r"\(([^)]+)\)$", sample.title.get("en", ""))
        names = _motifs(motifs, "ug")
        if names:
            out["ug"] = f"ئەتلەس: {names}"
            if palette and palette.group(1) in PALETTES:
                out["ug"] += f" ({PALETTES[palette.group(1)]['ug']})"
                if sample.title.get("zh"):
                    out["zh"] = f"{sample.title['zh']}（{PALETTES[palette.group(1)]['zh']}）"
    elif match := re.fullmatch(r"(Hanging scroll|Handscroll) (\d+)", sample.title.get("en", "")):
        out["ug"] = f"{LANDSCAPE_PARTS[match.group(1).lower()]['ug']} {match.group(2)}"
    elif sample.style == "landscape":
        names = _motifs(motifs, "ug")
        if names:
            out["ug"] = f"مەنزىرە: {names}"
    return out


def description(sample) -> dict[str, str]:
    """zh and ug descriptions built from the caption's parts; none when a part is unknown."""
    caption = getattr(sample, "caption", "") or ""
    out: dict[str, str] = {}
    if sample.style == "atlas":
        # In the order the caption names them (it never names the palette itself).
        colours = [c for c in sorted(COLOURS, key=caption.find) if c in caption]
        motifs = _motifs(_iconic_motifs(sample), "zh"), _motifs(_iconic_motifs(sample), "ug")
        if colours and all(motifs):
            zh_colours = "、".join(COLOURS[c]["zh"] for c in colours)
            ug_colours = _join([COLOURS[c]["ug"] for c in colours], "ug")
            out["zh"] = f"艾德莱斯绸，{zh_colours}扎经染色纹样，纵向经带，饰有{motifs[0]}。"
            out["ug"] = (
                f"ئەتلەس يىپەك: {ug_colours} رەڭلىك نەقىش، تىك ئۆرۈش بەلۋاغلىرى، "
                f"{motifs[1]} نەقىشلىرى بىلەن."
            )
    elif sample.style == "landscape":
        parts = [p.strip() for p in caption.split(",") if p.strip()]
        if parts and all(p in LANDSCAPE_PARTS for p in parts):
            head, *rest = parts
            zh_rest = "、".join(LANDSCAPE_PARTS[p]["zh"] for p in rest)
            ug_rest = _join([LANDSCAPE_PARTS[p]["ug"] for p in rest], "ug")
            out["zh"] = f"{LANDSCAPE_PARTS[head]['zh']}：{zh_rest}。" if rest else ""
            out["ug"] = f"{LANDSCAPE_PARTS[head]['ug']}: {ug_rest}." if rest else ""
            out = {k: v for k, v in out.items() if v}
    return out


def merged(current: dict | None, extra: dict[str, str]) -> dict:
    """``current`` with the languages it lacks taken from ``extra`` (never overwriting)."""
    result = dict(current or {})
    for lang, text in extra.items():
        if text and not result.get(lang):
            result[lang] = text
    return result
