"""Studies, assignments, blindness, access rules and ratings (pages and API)."""

from __future__ import annotations

import io
import json
import re
import struct
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from PIL import Image

from archives.services import stored_file_read
from evaluation import selectors, services
from evaluation.models import Assignment, Panel, Rating, Study, StudyItem
from tests.conftest import make_user
from tests.evaluation.conftest import make_world

DIMS = ["style_consistency", "image_text_match", "detail_richness", "artistic_beauty"]
LEAKS = re.compile(r"\blora\b|\bbase\b|\[U\]|atlas-lora|generation/requests|condition", re.I)


def make_study(world, experts, **kwargs):
    panel = Panel.objects.create(name=f"panel-{Panel.objects.count()}")
    panel.members.set(experts)
    kwargs.setdefault("reference_images", [world.reference])
    return services.study_create(
        title="Base vs LoRA", panel=panel, generated_images=world.images, seed=42, **kwargs
    )


def client_for(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    out, i = [], 8
    while i < len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        out.append(data[i + 4 : i + 8])
        i += 12 + length
    return out


# --- assignment -----------------------------------------------------------------------------


def test_every_expert_rates_every_item_in_their_own_random_order(world):
    study = make_study(world, world.experts)
    items = set(study.items.values_list("pk", flat=True))
    assert len(items) == 5  # 2 seeds x (base, lora) + 1 calibration reference
    orders = []
    for expert in world.experts:
        mine = list(Assignment.objects.filter(study=study, expert=expert).order_by("position"))
        assert [a.position for a in mine] == [1, 2, 3, 4, 5]
        assert {a.item_id for a in mine} == items
        orders.append(tuple(a.item_id for a in mine))
    assert len(set(orders)) > 1  # randomised per expert (seeded, so this is deterministic)


def test_balanced_subset_gives_each_prompt_three_raters(db):
    world = make_world(tag="b")
    other = make_world(tag="c", prompt="a pavilion by the lake")
    experts = [make_user(f"bal{i}", "expert") for i in range(5)]
    panel = Panel.objects.create(name="balanced")
    panel.members.set(experts)
    study = services.study_create(
        title="balanced",
        panel=panel,
        generated_images=world.images + other.images,
        assignment_mode="balanced",
        raters_per_item=3,
        seed=1,
    )
    for item in study.items.all():
        raters = set(item.assignments.values_list("expert_id", flat=True))
        assert len(raters) == 3
        # the same three experts see every condition of the prompt (paired design)
        siblings = study.items.filter(group=item.group)
        assert all(
            set(s.assignments.values_list("expert_id", flat=True)) == raters for s in siblings
        )
    loads = [Assignment.objects.filter(study=study, expert=e).count() for e in experts]
    assert max(loads) - min(loads) <= 4  # one group of 4 images at most apart
    with pytest.raises(ValidationError):
        services.study_create(
            title="x",
            panel=panel,
            generated_images=world.images,
            assignment_mode="balanced",
            raters_per_item=2,
        )
    with pytest.raises(ValidationError, match="raters per item"):
        services.study_create(
            title="x",
            panel=panel,
            generated_images=world.images,
            assignment_mode="balanced",
            raters_per_item=6,
        )


def test_study_refuses_public_images_and_empty_panels(world):
    with pytest.raises(ValidationError, match="no experts"):
        make_study(world, [])
    world.images[0].approved = True
    world.images[0].save()
    with pytest.raises(ValidationError, match="approved"):
        make_study(world, world.experts)
    assert not Study.objects.exists()


# --- blindness ------------------------------------------------------------------------------


def test_served_images_are_stripped_copies_under_opaque_names(world):
    study = make_study(world, world.experts)
    original = stored_file_read(world.images[0].file)
    assert b"tEXt" in original or b"iTXt" in original  # the source carries parameters
    for item in study.items.select_related("blind"):
        assert re.fullmatch(r"evaluation/blind/[0-9a-f]{32}\.png", item.blind.name)
        data = stored_file_read(item.blind)
        assert png_chunks(data) == [b"IHDR", b"IDAT", b"IEND"] or set(png_chunks(data)) == {
            b"IHDR",
            b"IDAT",
            b"IEND",
        }
        with Image.open(io.BytesIO(data)) as im:
            assert im.info == {} or set(im.info) <= {"dpi"}
            assert im.getexif() == {}
    g = world.images[0]
    item = study.items.get(generated=g)
    with (
        Image.open(io.BytesIO(stored_file_read(item.blind))) as a,
        Image.open(io.BytesIO(stored_file_read(g.file))) as b,
    ):
        assert a.convert("RGB").tobytes() == b.convert("RGB").tobytes()  # same pixels


def test_nothing_an_expert_is_served_names_the_condition(world):
    study = make_study(world, world.experts)
    expert = world.experts[0]
    c = client_for(expert)
    pages = [c.get("/evaluation/"), c.get(f"/evaluation/studies/{study.pk}/")]
    for a in Assignment.objects.filter(study=study, expert=expert):
        page = c.get(f"/evaluation/studies/{study.pk}/rate/{a.position}/")
        assert page.status_code == 200
        assert a.item.token in page.content.decode()
        pages.append(page)
        img = c.get(f"/evaluation/img/{a.item.token}.png")
        assert img.status_code == 200 and img["Content-Type"] == "image/png"
        assert img["Content-Disposition"] == 'inline; filename="image.png"'  # neutral name
        body = b"".join(img.streaming_content)
        assert set(png_chunks(body)) == {b"IHDR", b"IDAT", b"IEND"}
    api = c.get(f"/api/v1/evaluation/studies/{study.pk}/items/")
    listing = c.get("/api/v1/evaluation/studies/")
    for response in [*pages, api, listing]:
        text = response.content.decode()
        text = text.replace('href="/curator/generation/"', "")  # the site's own nav link
        assert not LEAKS.search(text), LEAKS.search(text).group(0)
        for g in world.images:
            assert f"/generated-images/{g.pk}" not in text
    items = api.json()["items"]
    assert set(items[0]) == {
        "position",
        "token",
        "image_url",
        "width",
        "height",
        "prompt",
        "passage",
        "my_ratings",
    }
    # Both conditions of a prompt show the same words, without the LoRA trigger token.
    prompts = set(
        StudyItem.objects.filter(study=study, kind="generated").values_list("prompt", flat=True)
    )
    assert prompts == {"a river between two hills"}


# --- access ---------------------------------------------------------------------------------


def test_expert_not_on_the_study_gets_404_everywhere(world):
    study = make_study(world, world.experts[:2])
    outsider = world.experts[3]
    item = study.items.first()
    c = client_for(outsider)
    assert c.get(f"/evaluation/studies/{study.pk}/").status_code == 404
    assert c.get(f"/evaluation/studies/{study.pk}/rate/1/").status_code == 404
    assert c.get(f"/evaluation/img/{item.token}.png").status_code == 404
    assert c.get(f"/api/v1/evaluation/studies/{study.pk}/items/").status_code == 404
    r = c.post(
        f"/api/v1/evaluation/studies/{study.pk}/items/{item.token}/ratings/",
        {"scores": {"style_consistency": 5}},
        content_type="application/json",
    )
    assert r.status_code == 404
    assert c.get("/api/v1/evaluation/studies/").json()["results"] == []
    with pytest.raises(Exception, match="not assigned"):
        services.rating_submit(expert=outsider, item=item, scores={"style_consistency": 5})
    assert not Rating.objects.exists()
    # reports are for curators only
    assert c.get(f"/evaluation/studies/{study.pk}/report/").status_code == 403
    assert c.get(f"/api/v1/evaluation/studies/{study.pk}/report/").status_code == 403
    assert c.get(f"/evaluation/studies/{study.pk}/report.csv").status_code == 403
    anon = Client()
    assert anon.get(f"/evaluation/studies/{study.pk}/").status_code == 302  # to the login page
    assert anon.get(f"/evaluation/img/{item.token}.png").status_code == 302
    assert anon.get(f"/api/v1/evaluation/studies/{study.pk}/items/").status_code in (401, 403)


def test_an_expert_never_sees_another_experts_ratings(world):
    study = make_study(world, world.experts[:2])
    first, second = world.experts[:2]
    item = Assignment.objects.get(study=study, expert=first, position=1).item
    services.rating_submit(
        expert=first,
        item=item,
        scores={d: 5 for d in DIMS},
        comments={"artistic_beauty": "secret remark of expert one"},
    )
    pos = Assignment.objects.get(study=study, expert=second, item=item).position
    c = client_for(second)
    page = c.get(f"/evaluation/studies/{study.pk}/rate/{pos}/").content.decode()
    assert "secret remark" not in page and "checked" not in page
    api = c.get(f"/api/v1/evaluation/studies/{study.pk}/items/").json()
    assert all(i["my_ratings"] == {} for i in api["items"])
    assert "secret remark" not in json.dumps(api)


# --- rating ---------------------------------------------------------------------------------


def test_scoring_form_saves_edits_and_locks_when_closed(world):
    study = make_study(world, world.experts[:1])
    expert = world.experts[0]
    c = client_for(expert)
    page = c.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()
    assert page.count("<fieldset") == 4 and page.count("<legend>") == 4
    assert page.count('type="radio"') == 20 and "<progress" in page
    assert "A river runs between two hills." in page  # the passage, for image-text match
    assert "Indistinguishable from the reference style" in page  # anchored descriptions
    # an incomplete image is refused, saying what is missing; nothing is saved
    r = c.post(
        f"/evaluation/studies/{study.pk}/rate/1/", {"score_style_consistency": "4", "later": "1"}
    )
    assert r.status_code == 400
    assert "Rate all four dimensions" in r.content.decode()
    assert "Detail richness" in r.content.decode()
    assert Rating.objects.filter(expert=expert).count() == 0
    # complete and edit
    data = {f"score_{d}": "3" for d in DIMS} | {"comment_detail_richness": "fine brushwork"}
    r = c.post(f"/evaluation/studies/{study.pk}/rate/1/", data)
    assert r["Location"] == f"/evaluation/studies/{study.pk}/rate/2/"
    assert Rating.objects.filter(expert=expert).count() == 4
    assert Rating.objects.get(expert=expert, dimension="style_consistency").score == 3
    assert selectors.expert_progress(study, expert) == (1, 5)
    page = c.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()
    assert "fine brushwork" in page and page.count("checked") == 4
    # out of range is a 400 with the message; nothing changes
    r = c.post(
        f"/evaluation/studies/{study.pk}/rate/1/",
        {f"score_{d}": "3" for d in DIMS} | {"score_style_consistency": "6"},
    )
    assert r.status_code == 400 and "aria-invalid" in r.content.decode()
    assert Rating.objects.get(expert=expert, dimension="style_consistency").score == 3
    # closed: no more edits, through the page or the API
    services.study_close(study=study)
    r = c.post(f"/evaluation/studies/{study.pk}/rate/1/", {"score_style_consistency": "1"})
    assert r.status_code == 302
    item = Assignment.objects.get(study=study, expert=expert, position=1).item
    api = c.post(
        f"/api/v1/evaluation/studies/{study.pk}/items/{item.token}/ratings/",
        {"scores": {"style_consistency": 1}},
        content_type="application/json",
    )
    assert api.status_code == 409
    assert Rating.objects.get(expert=expert, dimension="style_consistency").score == 3
    assert "disabled" in c.get(f"/evaluation/studies/{study.pk}/rate/1/").content.decode()


def test_api_rating_validation(world):
    study = make_study(world, world.experts[:1])
    expert = world.experts[0]
    item = Assignment.objects.get(study=study, expert=expert, position=1).item
    c = client_for(expert)
    url = f"/api/v1/evaluation/studies/{study.pk}/items/{item.token}/ratings/"
    assert (
        c.post(
            url, {"scores": {"style_consistency": 0}}, content_type="application/json"
        ).status_code
        == 400
    )
    bad = c.post(url, {"scores": {"colour": 3}}, content_type="application/json")
    assert bad.status_code == 400 and "unknown dimension" in bad.content.decode()
    ok = c.post(
        url,
        {"scores": {"style_consistency": 2}, "comments": {"style_consistency": "x"}},
        content_type="application/json",
    )
    assert ok.status_code == 200
    assert ok.json()["ratings"]["style_consistency"] == {"score": 2, "comment": "x"}


def test_database_enforces_one_rating_and_the_1_to_5_range(world):
    study = make_study(world, world.experts[:1])
    expert = world.experts[0]
    item = study.items.first()
    Rating.objects.create(
        study=study, item=item, expert=expert, dimension="detail_richness", score=3
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            study=study, item=item, expert=expert, dimension="detail_richness", score=4
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Rating.objects.create(
            study=study, item=item, expert=expert, dimension="artistic_beauty", score=6
        )


@pytest.mark.django_db(transaction=True)
def test_many_simultaneous_submissions_lose_none_and_duplicate_none():
    world = make_world(tag="t")
    experts = [make_user(f"conc{i}", "expert") for i in range(4)]
    study = make_study(world, experts)
    items = list(study.items.all())
    jobs = []
    for e in experts:
        for it in items:
            # each (expert, item) is submitted twice at once: 2 then 5 for every dimension
            jobs.append((e, it, 2))
            jobs.append((e, it, 5))

    def submit(job):
        expert, item, score = job
        try:
            services.rating_submit(expert=expert, item=item, scores={d: score for d in DIMS})
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(submit, jobs))
    assert Rating.objects.filter(study=study).count() == len(experts) * len(items) * 4
    for e in experts:
        for it in items:
            scores = set(Rating.objects.filter(expert=e, item=it).values_list("score", flat=True))
            assert scores <= {2, 5} and len(scores) >= 1


def test_curators_create_studies_through_api_and_page(world):
    curator = make_user("cur-s", "curator")
    panel = Panel.objects.create(name="api panel")
    panel.members.set(world.experts)
    ids = [g.pk for g in world.images]
    body = {
        "title": "API study",
        "panel": panel.pk,
        "generated_image_ids": ids,
        "reference_image_ids": [world.reference.pk],
        "instructions": "Rate each image.",
    }
    expert_client = client_for(world.experts[0])
    r = expert_client.post("/api/v1/evaluation/studies/", body, content_type="application/json")
    assert r.status_code == 403
    c = client_for(curator)
    bad = c.post(
        "/api/v1/evaluation/studies/",
        {**body, "generated_image_ids": [999999]},
        content_type="application/json",
    )
    assert bad.status_code == 400 and "no such image" in bad.content.decode()
    r = c.post("/api/v1/evaluation/studies/", body, content_type="application/json")
    assert r.status_code == 201, r.content
    study = Study.objects.get(pk=r.json()["id"])
    assert study.items.count() == 5 and study.instructions == "Rate each image."
    listing = expert_client.get("/api/v1/evaluation/studies/").json()["results"]
    assert listing[0]["label"] == f"Rating study {study.pk}" and "title" not in listing[0]
    assert c.get("/evaluation/studies/new/").status_code == 200
    r = c.post(
        "/evaluation/studies/new/",
        {
            "title": "Page study",
            "panel": panel.pk,
            "requests": [world.request.pk],
            "assignment_mode": "all",
            "raters_per_item": "3",
        },
    )
    assert r.status_code == 302
    assert Study.objects.get(title="Page study").items.count() == 4
    assert expert_client.get("/evaluation/studies/new/").status_code == 403
