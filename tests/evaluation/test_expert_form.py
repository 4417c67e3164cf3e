"""The expert form's page as Django renders it: the style-example strip, the integer-scale
image, translated wording."""

from __future__ import annotations

import pytest
from django.test import Client

from evaluation import services
from evaluation.models import Panel
from heritage import services as heritage_services
from heritage.models import Collection
from tests.conftest import make_user
from tests.evaluation.conftest import make_world
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


def published_image(accession: str, published: bool = True):
    collection, _ = Collection.objects.get_or_create(
        slug="styles", defaults={"title": {"en": "S"}, "published": True}
    )
    item = heritage_services.item_create(
        collection=collection,
        accession_number=accession,
        title={"en": accession},
        published=published,
    )
    return heritage_services.item_image_create(
        item=item,
        content=image_bytes(size=(80, 60)),
        filename=f"{accession}.png",
        derivatives="now",
    )


@pytest.fixture
def study_and_expert(db):
    world = make_world()
    expert = make_user("rater1", "expert")
    panel = Panel.objects.create(name="p")
    panel.members.set([expert])
    study = services.study_create(
        title="t",
        panel=panel,
        generated_images=world.images,
        reference_images=[world.reference],
        seed=1,
    )
    client = Client()
    client.force_login(expert)
    return study, expert, client


def test_style_strip_shows_the_studys_published_references(study_and_expert):
    study, _expert, client = study_and_expert
    shown, hidden = published_image("STY-1"), published_image("STY-2", published=False)
    services.study_references_set(study=study, image_ids=[shown.pk, hidden.pk])
    html = client.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()
    assert "The heritage style: examples" in html
    assert shown.thumbnail_url in html and hidden.thumbnail_url not in html
    # The same strip on every image of the study: it tells nothing about any one of them.
    other = client.get(f"/evaluation/studies/{study.pk}/rate/2/").content.decode()
    assert shown.thumbnail_url in other


def test_small_images_are_enlarged_by_a_whole_number_without_smoothing(study_and_expert):
    study, _expert, client = study_and_expert
    html = client.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()
    item = study.items.first()
    scale = 448 // item.width
    assert scale > 1
    assert f'width="{item.width * scale}" height="{item.height * scale}" class="upscaled"' in html


def test_the_form_speaks_uyghur(study_and_expert):
    study, _expert, client = study_and_expert
    client.post("/i18n/setlang/", {"language": "ug", "next": "/"})
    html = client.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()
    assert '<html lang="ug" dir="rtl">' in html
    assert "ئۇسلۇب ماسلىقى" in html and "ساقلاپ كېيىنكى رەسىمگە ئۆتۈش" in html
    response = client.post(
        f"/evaluation/studies/{study.pk}/rate/1/", {"score_style_consistency": "3"}
    )
    assert response.status_code == 400
    assert "تۆت ئۆلچەمنىڭ ھەممىسىگە" in response.content.decode()
