"""Blind copies as an expert downloads them: alike for every condition, named by nothing.

The images are fetched the way the scoring form's browser fetches them (the address in the
page, and the file's own /files/<token>), through the real database and storage.
"""

from __future__ import annotations

import io
import re
import uuid

import pytest
from PIL import Image

from archives.services import stored_file_save
from evaluation.models import Assignment, StudyItem
from tests.evaluation.conftest import png_bytes, texture
from tests.evaluation.test_studies import client_for, make_study, png_chunks

pytestmark = pytest.mark.django_db

NEUTRAL = 'inline; filename="image.png"'
# Headers that may differ between two images (they describe the bytes, not the source).
PER_CONTENT = {"ETag", "Content-Length"}


def served(client, url: str):
    response = client.get(url)
    assert response.status_code == 200, url
    return response, response.getvalue()


def test_blind_copies_of_base_and_lora_are_alike_and_their_addresses_say_nothing(world):
    study = make_study(world, world.experts[:2])
    expert = world.experts[0]
    c = client_for(expert)
    headers, ihdrs, looks = [], set(), set()
    for assignment in Assignment.objects.filter(study=study, expert=expert):
        item = assignment.item
        page = c.get(f"/evaluation/studies/{study.pk}/rate/{assignment.position}/")
        (src,) = re.findall(r'<img src="([^"]+)"', page.content.decode())
        for url in (src, item.blind.url):
            # Only the opaque token: no condition, seed, run, request, position or storage name.
            assert url in (f"/evaluation/img/{item.token}.png", f"/files/{item.blind.token}")
            assert item.blind.name not in url and item.condition not in url
            response, body = served(c, url)
            assert response["Content-Disposition"] == NEUTRAL
            assert response["Cache-Control"] == "private, no-store"
            assert response["X-Content-Type-Options"] == "nosniff"
            headers.append({k: v for k, v in response.items() if k not in PER_CONTENT})
            chunks = png_chunks(body)
            assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
            assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}  # no tEXt/iTXt/zTXt/eXIf/iCCP
            ihdrs.add(body[8:33])  # size, bit depth, colour type, compression, filter, interlace
            with Image.open(io.BytesIO(body)) as image:
                looks.add((image.format, image.mode, image.size))
                assert not image.info and not image.getexif()
    conditions = set(StudyItem.objects.filter(study=study).values_list("condition", flat=True))
    assert conditions == {"base", "lora", "reference"}
    assert len(ihdrs) == 1 and looks == {("PNG", "RGB", (32, 32))}
    assert all(h == headers[0] for h in headers)  # the same response, whatever the condition
    # Tokens are random, not counters: neither sorts in the order the items were made.
    for item in StudyItem.objects.filter(study=study):
        assert uuid.UUID(str(item.blind.token)).version == 4
        assert len(item.token) == 24 and not item.token.isdigit()
        assert not re.search(r"base|lora|seed|\d+-", item.blind.name)


def test_an_expert_not_assigned_gets_404_for_every_blind_copy_and_every_original(world):
    study = make_study(world, world.experts[:2])
    outsider = client_for(world.experts[3])
    for item in StudyItem.objects.filter(study=study).select_related("blind"):
        assert outsider.get(item.blind.url).status_code == 404
        assert outsider.get(f"/evaluation/img/{item.token}.png").status_code == 404
    insider = client_for(world.experts[0])
    for assignment in Assignment.objects.filter(study=study, expert=world.experts[0]):
        assert insider.get(assignment.item.blind.url).status_code == 200
    for generated in world.images:  # the -base/-lora PNGs with their parameters inside
        assert insider.get(generated.file.url).status_code == 404
    assert (
        insider.get(world.request.training_run.dataset.examples.first().crop.url).status_code == 404
    )


def test_a_generated_image_of_another_size_is_served_at_the_studys_size(world):
    odd = world.by_condition("lora")[0]  # as if this LoRA had been run at another resolution
    odd.file = stored_file_save(name="generation/odd-lora.png", content=png_bytes(texture(1, 48)))
    odd.width = odd.height = 48
    odd.save()
    study = make_study(world, world.experts[:1])
    c = client_for(world.experts[0])
    for item in StudyItem.objects.filter(study=study).select_related("blind"):
        _, body = served(c, item.blind.url)
        with Image.open(io.BytesIO(body)) as image:
            assert image.size == (32, 32) == (item.width, item.height), item.condition
