"""The interface catalogues: the committed .mo files match their .po files, and every string of
the kiosk, the error pages and the expert pages is translated into Chinese and Uyghur."""

from __future__ import annotations

import gettext
from pathlib import Path

import polib
import pytest

LOCALE = Path(__file__).resolve().parents[2] / "locale"
LANGS = ["zh", "ug"]
# Pages visitors and experts use: nothing may be left in English there.
MUST_BE_TRANSLATED = (
    *(
        f"heritage/templates/heritage/{name}.html"
        for name in ("kiosk_base", "attract", "browse", "search", "item", "item_list", "_cards")
    ),
    "heritage/templatetags/",
    "heritage/texts.py",
    "config/templates/404.html",
    "config/templates/500.html",
    "evaluation/templates/evaluation/rate.html",
    "evaluation/templates/evaluation/study.html",
    "evaluation/templates/evaluation/home.html",
    "evaluation/views.py",
)


def translated(entry: polib.POEntry) -> bool:
    if entry.msgid_plural:
        return all(entry.msgstr_plural.values())
    return bool(entry.msgstr)


@pytest.mark.parametrize("lang", LANGS)
def test_compiled_catalogue_matches_the_po_file(lang):
    po = polib.pofile(str(LOCALE / lang / "LC_MESSAGES" / "django.po"))
    with open(LOCALE / lang / "LC_MESSAGES" / "django.mo", "rb") as handle:
        mo = gettext.GNUTranslations(handle)
    stale = []
    for entry in po:
        if not translated(entry) or entry.obsolete or "fuzzy" in entry.flags:
            continue
        if entry.msgid_plural:
            got = [mo.ngettext(entry.msgid, entry.msgid_plural, n) for n in (1, 2, 5)]
            want = [
                entry.msgstr_plural[min(i, len(entry.msgstr_plural) - 1)]
                for i in ((0, 0, 0) if len(entry.msgstr_plural) == 1 else (0, 1, 1))
            ]
        else:
            got, want = mo.gettext(entry.msgid), entry.msgstr
        if got != want:
            stale.append(entry.msgid)
    assert not stale, (
        f"locale/{lang}/LC_MESSAGES/django.mo is out of date (compile the .po: "
        f"manage.py compilemessages, or polib's save_as_mofile): {stale[:5]}"
    )


@pytest.mark.parametrize("lang", LANGS)
def test_kiosk_error_and_expert_pages_are_fully_translated(lang):
    po = polib.pofile(str(LOCALE / lang / "LC_MESSAGES" / "django.po"))
    missing = [
        e.msgid
        for e in po
        if not e.obsolete
        and any(path.startswith(MUST_BE_TRANSLATED) for path, _ in e.occurrences)
        and not translated(e)
    ]
    assert not missing, f"untranslated in {lang}: {missing}"


@pytest.mark.parametrize("lang", LANGS)
def test_translations_keep_their_placeholders(lang):
    """A %(name)s that the English has not would raise KeyError on the page (msgfmt -c)."""
    import re

    po = polib.pofile(str(LOCALE / lang / "LC_MESSAGES" / "django.po"))
    wrong = []
    for entry in po:
        wanted = set(re.findall(r"%\(\w+\)[sd]", entry.msgid + entry.msgid_plural))
        texts = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in filter(None, texts):
            if set(re.findall(r"%\(\w+\)[sd]", text)) - wanted:
                wrong.append(entry.msgid)
    assert not wrong, wrong
