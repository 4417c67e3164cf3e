"""The demo catalogue in three languages: every title, description, annotation meaning, motif
label and passage reading has Chinese and Uyghur; a rerun fills what an older load lacks and
overwrites nothing; the kiosk then shows Uyghur pages without English fallbacks."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from heritage import services
from heritage.models import GazetteerPassage, HeritageItem, MotifTerm, SemioticAnnotation

pytestmark = pytest.mark.django_db

ARGS = ["--atlas", "3", "--landscapes", "3", "--size", "96", "--no-dataset"]


def load():
    call_command("load_demo_catalogue", *ARGS, stdout=io.StringIO())


def test_every_demo_text_is_in_three_languages(client):
    load()
    items = HeritageItem.objects.filter(accession_number__startswith="DEMO-")
    assert items.count() >= 6
    for item in items:
        for field in (item.title, item.description):
            assert {"en", "zh", "ug"} <= set(k for k, v in field.items() if v), item
    for annotation in SemioticAnnotation.objects.all():
        assert annotation.meaning.get("zh") and annotation.meaning.get("ug"), annotation.meaning
    used = MotifTerm.objects.filter(annotations__isnull=False).distinct()
    assert all(term.label.get("ug") and term.label.get("zh") for term in used)
    passages = GazetteerPassage.objects.all()
    assert passages.count() == 4 and all(p.translations.get("ug") for p in passages)

    client.post("/i18n/setlang/", {"language": "ug", "next": "/"})
    for item in items:
        html = client.get(f"/items/{item.pk}/").content.decode()
        assert 'class="fallback"' not in html, item.title


def test_a_rerun_fills_missing_languages_and_keeps_edits():
    load()
    count = HeritageItem.objects.count()
    item = HeritageItem.objects.filter(accession_number__startswith="DEMO-ATLAS").first()
    services.item_update(item=item, title={"en": item.title["en"], "zh": "策展人改过的标题"})
    annotation = SemioticAnnotation.objects.filter(image__item=item).first()
    services.annotation_update(annotation=annotation, meaning={"en": annotation.meaning["en"]})
    passage = GazetteerPassage.objects.first()
    services.passage_update(passage=passage, translations={})
    load()
    item.refresh_from_db()
    annotation.refresh_from_db()
    passage.refresh_from_db()
    assert item.title["zh"] == "策展人改过的标题" and item.title["ug"]
    assert annotation.meaning["ug"] and annotation.meaning["zh"]
    assert passage.translations["ug"]
    assert HeritageItem.objects.count() == count
