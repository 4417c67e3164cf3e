"""Blindness over a study's whole life: an image rated blind is never public with its condition.

Approval is refused while any study containing the image is open (API, page, admin), reopening
a study withdraws the approvals of its images and names them, experts read nothing of the
generation app, and an approval racing a reopening cannot leave an approved image in an open
study.
"""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from evaluation import services
from evaluation.models import Panel, Study
from generation.models import GeneratedImage
from tests.conftest import make_user
from tests.evaluation.conftest import make_world


def make_study(world, experts) -> Study:
    panel = Panel.objects.create(name=f"panel-{Panel.objects.count()}")
    panel.members.set(experts)
    return services.study_create(
        title="Base vs LoRA", panel=panel, generated_images=world.images, seed=7
    )


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def page_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def publish(world) -> None:
    world.item.published = True
    world.item.save()
    world.item.collection.published = True
    world.item.collection.save()


def approve(client, image, approved=True):
    return client.post(
        f"/api/v1/generated-images/{image.pk}/approve/", {"approved": approved}, format="json"
    )


@pytest.fixture
def world(world):
    """Compared with the training images already (as the metrics job does): an approval is
    then decided at once (otherwise it is the evaluation.approval_check job's: test_approval)."""
    services.memorisation_check_images(generated_image_ids=[g.pk for g in world.images])
    return world


@pytest.fixture
def curator(db):
    return make_user("cur-blind", "curator")


def test_reopening_withdraws_approvals_and_names_them(world, curator):
    publish(world)
    study = make_study(world, world.experts)
    api = api_for(curator)
    assert api.post(f"/api/v1/evaluation/studies/{study.pk}/close/", {}).status_code == 200
    lora = world.by_condition("lora")[0]
    base = world.by_condition("base")[0]
    assert approve(api, lora).status_code == 200
    # A base-model image never goes to the kiosk: refused, unchanged.
    refused_base = approve(api, base)
    assert refused_base.status_code == 400
    assert "base model" in refused_base.json()["detail"]
    base.refresh_from_db()
    assert not base.approved
    kiosk = Client()
    assert kiosk.get(f"/companions/{lora.pk}.img").status_code == 200  # on the kiosk now

    response = api.post(
        f"/api/v1/evaluation/studies/{study.pk}/close/", {"reopen": True}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "open"
    assert body["withdrawn_approvals"] == [lora.pk]
    assert f"image {lora.pk}" in body["detail"]
    assert "withdrawn" in body["detail"]
    assert not GeneratedImage.objects.filter(approved=True).exists()
    # Gone from the kiosk and from what visitors read.
    assert kiosk.get(f"/companions/{lora.pk}.img").status_code == 404
    assert (
        f"/companions/{lora.pk}.img" not in kiosk.get(f"/items/{world.item.pk}/").content.decode()
    )
    assert Client().get("/api/v1/generated-images/").json()["count"] == 0
    # And it cannot come back while the study is open.
    refused = approve(api, lora)
    assert refused.status_code == 400
    assert "open expert study" in refused.json()["detail"]
    lora.refresh_from_db()
    assert not lora.approved


def test_reopening_from_the_report_page_says_which_images_left_the_kiosk(world, curator):
    study = make_study(world, world.experts)
    services.study_close(study=study)
    image = world.by_condition("lora")[0]
    assert approve(api_for(curator), image).status_code == 200
    page = page_for(curator).post(
        f"/evaluation/studies/{study.pk}/close/", {"reopen": "1"}, follow=True
    )
    assert page.status_code == 200
    text = page.content.decode()
    assert "Kiosk approval withdrawn" in text and f"image {image.pk}" in text
    image.refresh_from_db()
    study.refresh_from_db()
    assert study.status == "open" and not image.approved
    # Reopening a study none of whose images was approved says only that.
    services.study_close(study=study)
    again = page_for(curator).post(
        f"/evaluation/studies/{study.pk}/close/", {"reopen": "1"}, follow=True
    )
    assert "The study is open again." in again.content.decode()
    assert "withdrawn" not in again.content.decode()


def test_approval_while_open_is_refused_on_every_path(world, curator):
    study = make_study(world, world.experts)
    image = world.by_condition("lora")[0]
    # API
    response = approve(api_for(curator), image)
    assert response.status_code == 400 and "open expert study" in response.json()["detail"]
    # Curator page
    page = page_for(curator).post(
        f"/curator/generation/images/{image.pk}/approve/", {"approved": "1"}, follow=True
    )
    assert "open expert study" in page.content.decode()
    # Admin action (it used to update the rows directly)
    admin = make_user("admin-blind", is_staff=True, is_superuser=True)
    changelist = "/admin/generation/generatedimage/"
    page = page_for(admin).post(
        changelist,
        {"action": "approve", "_selected_action": [g.pk for g in world.images]},
        follow=True,
    )
    assert page.status_code == 200
    assert "open expert study" in page.content.decode()
    assert not GeneratedImage.objects.filter(approved=True).exists()
    # The admin change form does not offer the approved box at all.
    form = page_for(admin).get(f"{changelist}{image.pk}/change/").content.decode()
    assert 'name="approved"' not in form
    # Once the study is closed the admin action goes through the service and approves.
    services.study_close(study=study)
    page_for(admin).post(
        changelist, {"action": "approve", "_selected_action": [image.pk]}, follow=True
    )
    image.refresh_from_db()
    assert image.approved and image.approved_by == admin


def test_admin_reopens_through_the_service(world, curator):
    study = make_study(world, world.experts)
    services.study_close(study=study)
    image = world.by_condition("lora")[0]
    assert approve(api_for(curator), image).status_code == 200
    admin = make_user("admin-reopen", is_staff=True, is_superuser=True)
    client = page_for(admin)
    # The status is not a field of the change form (a hand edit would skip the withdrawal).
    form = client.get(f"/admin/evaluation/study/{study.pk}/change/").content.decode()
    assert 'name="status"' not in form
    page = client.post(
        "/admin/evaluation/study/",
        {"action": "reopen_studies", "_selected_action": [study.pk]},
        follow=True,
    )
    assert f"image {image.pk}" in page.content.decode()
    image.refresh_from_db()
    study.refresh_from_db()
    assert study.status == "open" and not image.approved


def test_experts_read_nothing_of_the_generation_app(world, curator):
    publish(world)  # visitors see approved images of published items and passages only
    world.passage.published = True
    world.passage.save()
    study = make_study(world, world.experts)
    services.study_close(study=study)
    image = world.by_condition("lora")[0]
    assert approve(api_for(curator), image).status_code == 200  # public, with its condition
    expert = world.experts[0]
    api = api_for(expert)
    for url in (
        "/api/v1/generated-images/",
        f"/api/v1/generated-images/{image.pk}/",
        f"/api/v1/generated-images/?condition=lora&item={world.item.pk}",
        "/api/v1/generation-requests/",
        f"/api/v1/generation-requests/{world.request.pk}/",
        "/api/v1/training-runs/",
        "/api/v1/base-models/",
        "/api/v1/sweeps/",
        "/api/v1/training-presets/",
    ):
        response = api.get(url)
        assert response.status_code in (403, 404), (url, response.status_code)
        assert "lora" not in response.content.decode().lower(), url
    assert approve(api, image, approved=False).status_code == 403
    pages = page_for(expert)
    for url in (
        "/curator/generation/",
        f"/curator/generation/requests/{world.request.pk}/",
        f"/curator/generation/runs/{world.request.training_run_id}/",
    ):
        assert pages.get(url).status_code in (403, 404), url
    # Their own blind views still work.
    assert api.get(f"/api/v1/evaluation/studies/{study.pk}/items/").status_code == 200
    # Visitors and curators still read the approved image.
    assert Client().get("/api/v1/generated-images/").json()["count"] == 1
    assert api_for(curator).get(f"/api/v1/generated-images/{image.pk}/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_an_approval_racing_a_reopening_never_leaves_an_approved_image_in_an_open_study():
    world = make_world(tag="r")
    experts = [make_user(f"race{i}", "expert") for i in range(2)]
    curator = make_user("cur-race", "curator")
    study = make_study(world, experts)
    image = world.by_condition("lora")[0]
    from generation.services import generated_image_approve

    services.memorisation_check_images(generated_image_ids=[image.pk])  # decided at once
    outcomes = []
    for _ in range(12):
        services.study_close(study=study)
        barrier = threading.Barrier(2)

        def do_approve(barrier=barrier):
            barrier.wait()
            try:
                generated_image_approve(image=GeneratedImage.objects.get(pk=image.pk), user=curator)
                outcomes.append("approved")
            except Exception as exc:  # the refusal of an open study
                outcomes.append(re.sub(r"\s+", " ", str(exc)))
            finally:
                connection.close()

        def do_reopen(barrier=barrier):
            barrier.wait()
            try:
                services.study_reopen(study=Study.objects.get(pk=study.pk))
            finally:
                connection.close()

        threads = [threading.Thread(target=do_approve), threading.Thread(target=do_reopen)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        image.refresh_from_db()
        study.refresh_from_db()
        assert study.status == "open"
        assert not image.approved, outcomes
    assert all(o == "approved" or "open expert study" in o for o in outcomes), outcomes
