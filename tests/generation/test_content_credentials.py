"""Content credentials (issue 22): every generated image says it is AI-made, to machines (a
signed C2PA manifest, read back here with c2pa's own Reader) and to people (a visible mark
measured on the drawn pixels); a changed pixel shows; expert copies stay blind.

Images come from the real generation path: the tiny model on a real gpu worker.
"""

from __future__ import annotations

import io
import json
import zlib

import c2pa
import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from PIL import Image

from archives.services import stored_file_read
from generation.diffusion import content_credentials as cc
from generation.diffusion.ai_mark import FLOOR_FRACTION, MARK_TEXT
from generation.diffusion.png_metadata import read_png_metadata
from generation.models import GeneratedImage, GenerationRequest
from tests.conftest import make_user, wait_for

AI = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def c2pa_store(data: bytes) -> tuple[str | None, dict]:
    """(validation state, manifest store) as c2pa's Reader answers; (None, {}) without one."""
    reader = c2pa.Reader.try_create("image/png", io.BytesIO(data))
    if reader is None:
        return None, {}
    with reader:
        return reader.get_validation_state(), json.loads(reader.json())


def active(store: dict) -> dict:
    return store["manifests"][store["active_manifest"]]


def assertion(manifest: dict, prefix: str) -> dict:
    return next(a["data"] for a in manifest["assertions"] if a["label"].startswith(prefix))


def pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def with_one_pixel_changed(data: bytes) -> bytes:
    """The same PNG, every chunk (the manifest too) kept, with one pixel's red value changed."""
    array = pixels(data).copy()
    array[3, 5, 0] ^= 0x01
    raw = b"".join(b"\x00" + row.tobytes() for row in array)  # filter type 0 per row
    chunks = cc.png_chunks(data)
    idats = [i for i, (kind, _) in enumerate(chunks) if kind == b"IDAT"]
    chunks[idats[0]] = (b"IDAT", zlib.compress(raw))
    chunks = [c for i, c in enumerate(chunks) if i not in idats[1:]]
    return cc.png_from_chunks(chunks)


def generate(client, start_worker, **fields) -> GenerationRequest:
    body = client.post("/api/v1/generation-requests/", fields, format="json").json()
    worker = start_worker(("gpu",))
    request = wait_for(
        lambda: GenerationRequest.objects.filter(
            pk=body["id"], job__status__in=("succeeded", "failed")
        ).first(),
        timeout=180,
        message=worker.output(),
    )
    assert request.job.status == "succeeded", request.job.error + worker.output()
    return request


@pytest.mark.worker
def test_generated_images_carry_signed_credentials_that_a_changed_pixel_breaks(
    start_worker, curator_client, curator, finished_run, base_model, tmp_path
):
    from heritage.services import passage_create

    passage = passage_create(
        source_work="Gazetteer", original_text="山高水长", approved_prompt="misty mountains"
    )
    request = generate(
        curator_client,
        start_worker,
        passage=passage.pk,
        training_run=finished_run.pk,
        compare_with_base=True,
        seeds=[7],
        steps=4,
    )
    images = {image.condition: image for image in request.images.all()}
    assert set(images) == {"base", "lora"}
    content_ids = set()
    for condition, image in images.items():
        data = stored_file_read(image.file)
        state, store = c2pa_store(data)
        # Valid (signature and hashes hold) or Trusted; untrusted only because the development
        # root is on no public trust list.
        assert state in ("Valid", "Trusted"), store.get("validation_status")
        manifest = active(store)
        (created,) = [a for a in assertion(manifest, "c2pa.actions")["actions"]]
        assert created["action"] == "c2pa.created"
        assert created["digitalSourceType"] == AI
        assert created["softwareAgent"]["name"] == "Atelier"
        hashes = {i["metadata"]["kind"]: i["metadata"]["sha256"] for i in manifest["ingredients"]}
        assert {i["instance_id"] for i in manifest["ingredients"]} == {
            f"sha256:{h}" for h in hashes.values()
        }
        ours = assertion(manifest, cc.ASSERTION_LABEL)
        if condition == "lora":
            assert hashes == {"base model": base_model.sha256, "LoRA": finished_run.lora_sha256}
            assert ours["dataset"] == {
                "id": finished_run.dataset_id,
                "version": finished_run.dataset.version,
                "name": finished_run.dataset.name,
            }
        else:  # the base model's image of the pair: no LoRA in it, no dataset
            assert hashes == {"base model": base_model.sha256}
            assert ours["dataset"] is None
        assert ours["prompt_source"]["passage_id"] == passage.pk
        assert ours["content_id"].startswith("urn:uuid:")
        content_ids.add(ours["content_id"])
        producer = assertion(manifest, "stds.schema-org.CreativeWork")["producer"]
        assert producer["name"] == settings.ATELIER_ORGANISATION
        # The IPTC DigitalSourceType and the GB 45438 implicit label in XMP, under the signature.
        with Image.open(io.BytesIO(data)) as opened:
            xmp = opened.info["xmp"].decode()
        assert f"<Iptc4xmpExt:DigitalSourceType>{AI}<" in xmp
        assert "ContentProducer" in xmp and ours["content_id"] in xmp
        # A1111 still reads its parameters; the PNG's pixels are what the model rendered.
        parameters, provenance = read_png_metadata(data)
        assert parameters.startswith("[U], misty mountains")
        assert provenance["seed"] == 7

        tampered = with_one_pixel_changed(data)
        assert (pixels(tampered) != pixels(data)).sum() == 1
        state, store = c2pa_store(tampered)
        assert state == "Invalid"
        assert any(
            "mismatch" in s["code"] or "Hashes do not match" in s.get("explanation", "")
            for s in store["validation_status"]
        )

    assert len(content_ids) == 2  # one content id per image

    # The contact sheet (a composite of both) is signed as such.
    state, store = c2pa_store(stored_file_read(request.contact_sheet))
    assert state in ("Valid", "Trusted")
    sheet = active(store)
    (created,) = assertion(sheet, "c2pa.actions")["actions"]
    assert created["digitalSourceType"] == cc.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert {i["metadata"]["sha256"] for i in sheet["ingredients"]} == {
        base_model.sha256,
        finished_run.lora_sha256,
    }
    assert assertion(sheet, cc.ASSERTION_LABEL)["conditions"] == ["base", "lora"]

    # The verification API, page and command say the same of the stored and the changed file.
    lora = images["lora"]
    stored = curator_client.post(
        "/api/v1/content-credentials/verify/", {"generated_image": lora.pk}, format="json"
    ).json()
    assert stored["intact"] and stored["ai_generated"] and stored["generated_image"] == lora.pk
    assert {i["sha256"] for i in stored["ingredients"]} == {
        base_model.sha256,
        finished_run.lora_sha256,
    }
    changed = with_one_pixel_changed(stored_file_read(lora.file))
    upload = io.BytesIO(changed)
    upload.name = "changed.png"
    answer = curator_client.post(
        "/api/v1/content-credentials/verify/", {"file": upload}, format="multipart"
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["has_manifest"] and not body["intact"] and not body["hash_valid"]
    assert "do NOT hold" in body["summary"]

    page = Client()
    page.force_login(curator)
    upload = io.BytesIO(changed)
    upload.name = "changed.png"
    html = page.post("/curator/generation/credentials/", {"file": upload}).content.decode()
    assert "credentials do NOT hold" in html and "does not match" in html
    html = page.post("/curator/generation/credentials/", {"generated_image": lora.pk}).content
    assert "credentials hold" in html.decode() and finished_run.lora_sha256 in html.decode()

    path = tmp_path / "changed.png"
    path.write_bytes(changed)
    with pytest.raises(SystemExit) as exited:
        call_command("verify_credentials", str(path), stdout=io.StringIO())
    assert exited.value.code == 1
    path.write_bytes(stored_file_read(lora.file))
    out = io.StringIO()
    call_command("verify_credentials", str(path), stdout=out)
    assert "Content credentials hold: AI-generated" in out.getvalue()
    assert "LoRA" in out.getvalue() and finished_run.lora_sha256 in out.getvalue()

    # Expert copies: no manifest, no XMP, no text; the same pixels the signed original holds.
    from evaluation import services as evaluation
    from evaluation.models import Assignment

    expert = make_user("cc-expert", "expert")
    panel = evaluation.panel_create(name="cc panel", members=[expert])
    study = evaluation.study_create(
        title="Blind", panel=panel, generated_images=list(images.values()), seed=1
    )
    expert_client = Client()
    expert_client.force_login(expert)
    originals = {
        image.file.sha256: pixels(stored_file_read(image.file)) for image in images.values()
    }
    seen = 0
    for assignment in Assignment.objects.filter(study=study, expert=expert).select_related(
        "item__blind"
    ):
        response = expert_client.get(assignment.item.blind.url)
        assert response.status_code == 200
        blind = response.getvalue()
        assert c2pa_store(blind) == (None, {})
        assert not cc.png_has_manifest(blind)
        assert {kind for kind, _ in cc.png_chunks(blind)} == {b"IHDR", b"IDAT", b"IEND"}
        assert any(np.array_equal(pixels(blind), p) for p in originals.values())
        seen += 1
    assert seen == 2
    # The study's bag keeps the signed originals, byte for byte.
    from archives.bag_registry import bag_scope
    from archives.bagit_export import bag_build

    bag_build(
        scope=bag_scope("study"),
        root=study,
        workdir=tmp_path / "bag",
        bag_name="study-bag",
        external_identifier="urn:uuid:00000000-0000-4000-8000-000000000001",
    )
    for image in images.values():
        (copy,) = [
            p
            for p in (tmp_path / "bag" / "study-bag").rglob(image.file.name.rsplit("/", 1)[-1])
            if p.parent.name == str(request.pk)
        ]
        assert copy.read_bytes() == stored_file_read(image.file)
        assert c2pa_store(copy.read_bytes())[0] in ("Valid", "Trusted")
    # ... and the expert gets no signed copy of them either.
    assert expert_client.get(f"/curator/generation/images/{lora.pk}/download/").status_code == 404


def ink_box(marked: np.ndarray, original: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the drawn text: bright pixels inside the changed band."""
    changed = np.abs(marked.astype(int) - original.astype(int)).sum(axis=-1) > 0
    rows, cols = np.nonzero(changed)
    band = marked[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    text_rows, text_cols = np.nonzero(band.min(axis=-1) > 127)  # white glyphs on a dark band
    return (
        rows.min() + text_rows.min(),
        rows.min() + text_rows.max() + 1,
        cols.min() + text_cols.min(),
        cols.min() + text_cols.max() + 1,
    )


@pytest.mark.worker
def test_downloads_carry_a_visible_localized_mark_at_least_5_percent_high(
    start_worker, curator_client, curator, finished_run
):
    from generation import services

    request = generate(
        curator_client,
        start_worker,
        prompt="silk pattern",
        training_run=finished_run.pk,
        seeds=[3],
        steps=2,
        width=256,
        height=192,
    )
    image = request.images.get()
    original = stored_file_read(image.file)
    assert pixels(original).shape == (192, 256, 3)
    url = f"/curator/generation/images/{image.pk}/download/"

    # Not approved: only curators have it. Their working copy is the signed original, unmarked.
    assert Client().get(url).status_code == 404
    curator_page = Client()
    curator_page.force_login(curator)
    working = curator_page.get(url)
    assert working.status_code == 200 and working.getvalue() == original

    from heritage.models import HeritageItem

    item = HeritageItem.objects.filter(published=True, collection__published=True).first()
    GeneratedImage.objects.filter(pk=image.pk).update(item=item)
    from evaluation.services import memorisation_check_images

    memorisation_check_images(generated_image_ids=[image.pk])  # so approving is decided at once
    services.generated_image_approve(image=GeneratedImage.objects.get(pk=image.pk), user=curator)
    # The kiosk shows the signed original (its label is beside it, in the visitor's language).
    kiosk = Client().get(f"/companions/{image.pk}.img")
    assert kiosk.status_code == 200
    shown = kiosk.getvalue()  # a streamed answer: read it once
    assert shown == original and c2pa_store(shown)[0] in ("Valid", "Trusted")
    short = min(256, 192)
    content_id = assertion(active(c2pa_store(original)[1]), cc.ASSERTION_LABEL)["content_id"]
    for language in ("en", "zh", "ug"):
        response = Client().get(url, {"lang": language})  # a visitor
        assert response.status_code == 200, language
        marked = response.getvalue()
        top, bottom, left, right = ink_box(pixels(marked), pixels(original))
        assert bottom - top >= FLOOR_FRACTION * short, (language, bottom - top)
        assert right - left > 0
        state, store = c2pa_store(marked)
        assert state in ("Valid", "Trusted")
        manifest = active(store)
        actions = [a["action"] for a in assertion(manifest, "c2pa.actions")["actions"]]
        assert actions == ["c2pa.created", "c2pa.edited"]
        ours = assertion(manifest, cc.ASSERTION_LABEL)
        assert ours["content_id"] == content_id and ours["original_sha256"] == image.file.sha256
        edited = assertion(manifest, "c2pa.actions")["actions"][1]["description"]
        assert MARK_TEXT[language] in edited
    # The API answers the same marked copy; ?mark=1 gives a curator one too.
    api = Client().get(f"/api/v1/generated-images/{image.pk}/download/", {"lang": "zh"})
    assert api.status_code == 200
    assert ink_box(pixels(api.getvalue()), pixels(original))[1] > 0
    assert curator_page.get(url, {"mark": "1"}).getvalue() != original


@pytest.mark.django_db
def test_downloads_follow_the_deployment_setting(settings, curator):
    """With marks off, visitors get the signed original too (what the kiosk shows)."""
    settings.ATELIER_AI_MARK_DOWNLOADS = False
    from generation import credentials

    visitor = make_user("cc-visitor")
    assert credentials.mark_wanted(visitor) is False
    assert credentials.mark_wanted(curator) is False
    assert credentials.mark_wanted(curator, asked=True) is True
    settings.ATELIER_AI_MARK_DOWNLOADS = True
    assert credentials.mark_wanted(visitor) is True
    assert credentials.mark_wanted(visitor, asked=False) is True  # visitors cannot opt out
    assert credentials.mark_wanted(curator) is False
    settings.ATELIER_AI_MARK_CURATOR_COPIES = True
    assert credentials.mark_wanted(curator) is True


@pytest.mark.django_db
def test_verification_refuses_what_is_not_an_image_within_the_limits(settings, curator_client):
    def post(content: bytes, name: str = "x.png"):
        upload = io.BytesIO(content)
        upload.name = name
        return curator_client.post(
            "/api/v1/content-credentials/verify/", {"file": upload}, format="multipart"
        )

    assert post(b"not an image").status_code == 400
    answer = curator_client.post("/api/v1/content-credentials/verify/", {}, format="json")
    assert answer.status_code == 400 and "either file or generated_image" in answer.content.decode()
    missing = curator_client.post(
        "/api/v1/content-credentials/verify/", {"generated_image": 999999}, format="json"
    )
    assert missing.status_code == 400 and "999999" in missing.content.decode()

    plain = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(plain, "PNG")
    body = post(plain.getvalue()).json()
    assert (
        body["has_manifest"] is False and body["summary"] == "No content credentials in this file."
    )

    settings.ATELIER_MAX_IMAGE_PIXELS = 1000  # a "bomb": more pixels than allowed
    bomb = post(plain.getvalue())
    assert bomb.status_code == 400 and "decompression bomb" in bomb.content.decode()
    settings.ATELIER_MAX_IMAGE_BYTES = 10
    big = post(plain.getvalue())
    assert big.status_code == 400 and "limit" in big.content.decode()

    anonymous = Client().post("/api/v1/content-credentials/verify/", {})
    assert anonymous.status_code in (401, 403)
    expert = Client()
    expert.force_login(make_user("cc-expert2", "expert"))
    assert expert.get("/curator/generation/credentials/").status_code == 403


def test_dev_certificate_command_makes_a_chain_that_signs_but_is_not_trusted(tmp_path):
    out = io.StringIO()
    call_command("c2pa_dev_certificate", dir=str(tmp_path / "c2pa"), stdout=out)
    assert "NOT trusted" in out.getvalue()
    folder = tmp_path / "c2pa"
    assert {p.name for p in folder.iterdir()} == {"root.pem", "cert.pem", "key.pem"}
    assert folder.joinpath("key.pem").stat().st_mode & 0o077 == 0
    claim = cc.GenerationClaim(
        content_id="urn:uuid:00000000-0000-4000-8000-000000000000",
        title="t.png",
        generator_name="Atelier",
        generator_version="test",
        producer="A museum",
        ingredients=(cc.ModelIngredient("base", "ab" * 32, "base model"),),
    )
    png = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(png, "PNG")
    signer = cc.SignerConfig(
        cert_chain_pem=(folder / "cert.pem").read_bytes(), key_pem=(folder / "key.pem").read_bytes()
    )
    signed = cc.sign_png(png.getvalue(), claim, signer)
    assert np.array_equal(pixels(signed), pixels(png.getvalue()))  # chunks added, pixels kept
    untrusted = cc.read_credentials(signed)
    assert untrusted.intact and not untrusted.trusted
    trusted = cc.read_credentials(signed, trust_anchors_pem=(folder / "root.pem").read_text())
    assert trusted.intact and trusted.trusted and trusted.state == "Trusted"
    # Run again: the chain is kept (it signed images already); --replace makes a new one.
    before = (folder / "cert.pem").read_bytes()
    call_command("c2pa_dev_certificate", dir=str(folder), stdout=io.StringIO())
    assert (folder / "cert.pem").read_bytes() == before
    call_command("c2pa_dev_certificate", dir=str(folder), replace=True, stdout=io.StringIO())
    assert (folder / "cert.pem").read_bytes() != before
