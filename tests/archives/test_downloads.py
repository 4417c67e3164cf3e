"""Every stored file is downloaded through /files/<token>, decided by the row that owns it.

Through the Django test client (all middleware, the real database and storage): who gets each
kind of file, what headers come back, how a front server or S3 is asked to send it, and that
nothing is reachable at a storage path, not even in development mode.
"""

from __future__ import annotations

import importlib
import io
import posixpath
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client, override_settings
from django.urls import clear_url_caches
from PIL import Image

from archives.models import BagExport, StoredFile
from archives.services import stored_file_save
from core.roles import groups_ensure
from evaluation import services as evaluation_services
from evaluation.models import Panel, StudyItem
from generation.models import TrainingCheckpoint, ValidationImage
from heritage.models import Collection, HeritageItem, ItemImage
from tests.conftest import make_user
from tests.evaluation.conftest import make_world, png_bytes, texture

pytestmark = pytest.mark.django_db

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
IN_COPYRIGHT = "http://rightsstatements.org/vocab/InC/1.0/"


def jpeg_bytes(seed: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(texture(seed)).save(out, "JPEG")
    return out.getvalue()


def published_image(accession: str, rights: str) -> ItemImage:
    collection, _ = Collection.objects.get_or_create(slug="public", defaults={"published": True})
    item = HeritageItem.objects.create(
        collection=collection, accession_number=accession, rights=rights, published=True
    )
    return ItemImage.objects.create(
        item=item,
        original=stored_file_save(
            name=f"heritage/originals/{accession}/scan.png", content=png_bytes(texture(5))
        ),
        width=32,
        height=32,
        thumbnail=stored_file_save(
            name=f"heritage/derivatives/{accession}/thumbnail.jpg",
            content=jpeg_bytes(6),
            content_type="image/jpeg",
        ),
        thumbnail_width=32,
        thumbnail_height=32,
    )


@pytest.fixture
def files(db):
    """One stored file of every kind, owned by its row, and the people who ask for them."""
    groups_ensure()
    world = make_world()  # an unpublished item, a LoRA run, a base-vs-LoRA request
    experts = [make_user(f"exp{i}", "expert") for i in range(2)]
    panel = Panel.objects.create(name="panel")
    panel.members.set(experts[:1])  # exp1 is an expert, but not on this study
    study = evaluation_services.study_create(
        title="Base vs LoRA", panel=panel, generated_images=world.images, seed=7
    )
    run, request = world.request.training_run, world.request
    run.lora_diffusers = stored_file_save(
        name=f"generation/runs/{run.pk}/lora/pytorch_lora_weights.safetensors",
        content=b"weights",
    )
    run.save()
    checkpoint = TrainingCheckpoint.objects.create(
        run=run,
        epoch=1,
        step=10,
        archive=stored_file_save(
            name=f"generation/runs/{run.pk}/checkpoints/step-10.zip", content=b"PK"
        ),
    )
    validation = ValidationImage.objects.create(
        run=run,
        epoch=1,
        condition="lora",
        prompt="p",
        seed=1,
        file=stored_file_save(
            name=f"generation/runs/{run.pk}/validation/1-lora.png",
            content=png_bytes(texture(9)),
        ),
    )
    request.contact_sheet = stored_file_save(
        name=f"generation/requests/{request.pk}/contact-sheet.png", content=png_bytes(texture(3))
    )
    request.save()
    bag = BagExport.objects.create(
        scope="study",
        target_id=str(study.pk),
        archive=stored_file_save(name="archives/bags/study.tar", content=b"tar"),
    )
    open_image = published_image("PUB-CC", CC_BY)
    closed_image = published_image("PUB-INC", IN_COPYRIGHT)
    blind = StudyItem.objects.filter(study=study, kind="generated").first().blind
    return {
        "kinds": {
            "published derivative": open_image.thumbnail,
            "published original, CC licence": open_image.original,
            "published original, in copyright": closed_image.original,
            "unpublished original": world.reference.original,
            "unpublished training crop": world.examples[0].crop,
            "LoRA weights": run.lora_diffusers,
            "checkpoint": checkpoint.archive,
            "validation image": validation.file,
            "generated image": world.images[0].file,
            "contact sheet": request.contact_sheet,
            "blind copy": blind,
            "bag archive": bag.archive,
        },
        "users": {
            "anonymous": None,
            "assigned expert": experts[0],
            "unassigned expert": experts[1],
            "curator": make_user("cur", "curator", is_staff=True),
            "archivist": make_user("arch", "archivist"),
            "superuser": make_user("root", is_staff=True, is_superuser=True),
        },
        "world": world,
        "study": study,
    }


def client_for(user) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


ANYONE = {"anonymous", "assigned expert", "unassigned expert", "curator", "archivist", "superuser"}
CURATORS = {"curator", "superuser"}
WHO_GETS_IT = {
    "published derivative": ANYONE,
    "published original, CC licence": ANYONE,
    "published original, in copyright": CURATORS,
    "unpublished original": CURATORS,
    "unpublished training crop": CURATORS,
    "LoRA weights": CURATORS,
    "checkpoint": CURATORS,
    "validation image": CURATORS,
    "generated image": CURATORS,
    "contact sheet": CURATORS,
    "blind copy": CURATORS | {"assigned expert"},
    "bag archive": {"archivist", "superuser"},
}


def test_each_kind_of_file_goes_to_the_people_its_row_allows_and_404_to_everyone_else(files):
    for kind, stored in files["kinds"].items():
        assert stored.url == f"/files/{stored.token}", kind  # no storage name, no extension
        for who, user in files["users"].items():
            response = client_for(user).get(stored.url)
            if who in WHO_GETS_IT[kind]:
                assert response.status_code == 200, (kind, who)
                assert response.getvalue() == stored_bytes(stored), (kind, who)
                assert response["X-Content-Type-Options"] == "nosniff"
                assert response["ETag"] == f'"{stored.sha256}"'
                public = WHO_GETS_IT[kind] == ANYONE
                expected = "public, max-age=3600" if public else "private, no-store"
                assert response["Cache-Control"] == expected, (kind, who)
            else:
                # 404, not 403: someone without rights cannot tell the file exists.
                assert response.status_code == 404, (kind, who, response.status_code)
                assert stored.sha256 not in response.content.decode()


def stored_bytes(stored: StoredFile) -> bytes:
    from archives.services import stored_file_read

    return stored_file_read(stored)


def test_a_made_up_token_and_a_write_method_change_nothing(files, client):
    assert client.get(f"/files/{uuid.uuid4()}").status_code == 404
    assert client.get("/files/not-a-token").status_code == 404
    curator = client_for(files["users"]["curator"])
    weights = files["kinds"]["LoRA weights"]
    before = stored_bytes(weights)
    assert curator.post(weights.url).status_code == 405
    assert curator.delete(weights.url).status_code == 405
    assert stored_bytes(weights) == before
    assert curator.head(weights.url).status_code == 200


def test_if_none_match_answers_304(files):
    curator = client_for(files["users"]["curator"])
    weights = files["kinds"]["LoRA weights"]
    first = curator.get(weights.url)
    again = curator.get(weights.url, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.getvalue() == b""


def test_nothing_is_served_at_a_storage_path_even_in_development_mode(files):
    import config.urls

    names = [stored.name for stored in files["kinds"].values()]
    try:
        with override_settings(DEBUG=True):
            importlib.reload(config.urls)  # the urlconf as a development server builds it
            clear_url_caches()
            superuser = client_for(files["users"]["superuser"])
            for name in names:
                assert superuser.get(f"/media/{name}").status_code == 404, name
                assert Client().get(f"/media/{name}").status_code == 404, name
    finally:
        importlib.reload(config.urls)
        clear_url_caches()


def test_generation_pages_link_files_only_by_token_and_are_closed_to_experts(files):
    world = files["world"]
    curator = client_for(files["users"]["curator"])
    run = world.request.training_run
    pages = [
        curator.get(f"/curator/generation/runs/{run.pk}/"),
        curator.get(f"/curator/generation/requests/{world.request.pk}/"),
        curator.get(f"/api/v1/generation-requests/{world.request.pk}/"),
        curator.get(f"/api/v1/training-runs/{run.pk}/"),
    ]
    names = [stored.name for stored in files["kinds"].values()]
    for page in pages:
        assert page.status_code == 200, page.request["PATH_INFO"]
        text = page.content.decode()
        assert "/media/" not in text
        assert not [name for name in names if name in text]
    assert run.lora_diffusers.url in pages[0].content.decode()
    assert world.request.contact_sheet.url in pages[1].content.decode()
    assert world.images[0].file.url in pages[1].content.decode()
    api_files = pages[2].json()["contact_sheet"]["url"]
    assert urlsplit(api_files).path == world.request.contact_sheet.url
    expert = client_for(files["users"]["assigned expert"])
    for page in pages:
        assert expert.get(page.request["PATH_INFO"]).status_code in (302, 403)
    for stored in (run.lora_diffusers, world.request.contact_sheet, world.images[0].file):
        assert expert.get(stored.url).status_code == 404


@override_settings(ATELIER_FILE_SENDER="x-accel-redirect")
def test_x_accel_redirect_hands_the_file_to_nginx_with_an_empty_body(files):
    weights = files["kinds"]["LoRA weights"]
    response = client_for(files["users"]["curator"]).get(weights.url)
    assert response.status_code == 200
    assert response.getvalue() == b""
    assert response["X-Accel-Redirect"] == f"/protected-media/{weights.name}"
    assert response["Cache-Control"] == "private, no-store"
    assert (
        response["Content-Disposition"] == f'inline; filename="{posixpath.basename(weights.name)}"'
    )

    # Refusals are the view's, before nginx is asked for anything.
    refused = client_for(files["users"]["assigned expert"]).get(weights.url)
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused


@override_settings(ATELIER_FILE_SENDER="x-sendfile")
def test_x_sendfile_names_the_file_for_apache(files, settings):
    sheet = files["kinds"]["contact sheet"]
    response = client_for(files["users"]["curator"]).get(sheet.url)
    assert response.status_code == 200 and response.getvalue() == b""
    assert response["X-Sendfile"] == str(settings.MEDIA_ROOT / sheet.name)


def test_s3_storage_redirects_to_a_short_lived_signed_url(files, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    s3 = {
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "atelier-test",
                "region_name": "eu-west-1",
                "querystring_auth": True,
                "signature_version": "s3v4",
            },
        },
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    study = files["study"]
    item = StudyItem.objects.filter(study=study, kind="generated").first()
    expert = client_for(files["users"]["assigned expert"])
    with override_settings(STORAGES=s3, ATELIER_FILE_SENDER="s3-signed"):
        response = expert.get(item.blind.url)
        assert response.status_code == 302
        assert response["Cache-Control"] == "private, no-store"
        target = urlsplit(response["Location"])
        query = parse_qs(target.query)
        assert "atelier-test" in target.netloc + target.path
        assert query["X-Amz-Expires"] == ["300"] and "X-Amz-Signature" in query
        assert query["response-content-disposition"] == ['inline; filename="image.png"']
        assert query["response-cache-control"] == ["private, no-store"]
        # The evaluation page's own address for the image redirects the same way.
        form_image = expert.get(f"/evaluation/img/{item.token}.png")
        assert form_image.status_code == 302
        assert urlsplit(form_image["Location"]).path == target.path
        refused = client_for(files["users"]["unassigned expert"]).get(item.blind.url)
        assert refused.status_code == 404


def test_rq_dashboard_is_for_superusers_only(files):
    users = files["users"]
    assert client_for(None).get("/admin/rq/").status_code == 302  # to the admin login
    curator = client_for(users["curator"])  # staff, with every catalogue permission
    response = curator.get("/admin/rq/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert curator.get("/admin/rq/queues/0/").status_code == 302
    assert curator.get("/admin/rq/stats.json").status_code == 403
    assert client_for(users["superuser"]).get("/admin/rq/").status_code == 200
    assert client_for(users["superuser"]).get("/admin/rq/stats.json").status_code == 200


def test_the_catalogue_api_links_originals_that_rights_allow_anyone_to_download(files, client):
    cc = ItemImage.objects.get(item__accession_number="PUB-CC")
    closed = ItemImage.objects.get(item__accession_number="PUB-INC")
    for image, status in ((cc, 200), (closed, 404)):
        original = client.get(f"/api/v1/images/{image.pk}/").json()["original"]
        assert urlsplit(original["url"]).path == f"/files/{image.original.token}"
        assert image.original.name not in str(original)
        assert client.get(urlsplit(original["url"]).path).status_code == status
