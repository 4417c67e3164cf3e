"""Uploads, derivatives and training datasets through the services (real DB and storage)."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from PIL import Image

from archives.models import StoredFile
from archives.services import stored_file_read
from heritage import services
from heritage.models import ItemImage, TrainingDataset, TrainingExample
from heritage.selectors import dataset_examples
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def item(db):
    collection = services.collection_create(slug="c", title={"en": "C"}, published=True)
    return services.item_create(collection=collection, accession_number="A-1", title={"en": "A"})


def open_stored(stored) -> Image.Image:
    return Image.open(io.BytesIO(stored_file_read(stored)))


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "JPEG"),
        ("CMYK", "JPEG"),
        ("P", "PNG"),
        ("I;16", "PNG"),
        ("RGBA", "PNG"),
        ("L", "TIFF"),
    ],
)
def test_modes_are_normalised_to_rgb_and_original_kept_byte_for_byte(item, mode, fmt):
    data = image_bytes(size=(40, 30), mode=mode, fmt=fmt)
    image = services.item_image_create(
        item=item, content=data, filename=f"x.{fmt.lower()}", derivatives="now"
    )
    assert stored_file_read(image.original) == data
    assert image.original.sha256 == __import__("hashlib").sha256(data).hexdigest()
    assert (image.width, image.height) == (40, 30)
    image.refresh_from_db()
    for stored in (image.thumbnail, image.display):
        derived = open_stored(stored)
        assert derived.mode == "RGB" and derived.format == "JPEG"
    assert image.iiif_sizes() == [(40, 30)]


def test_alpha_is_laid_on_white(item):
    data = image_bytes(size=(20, 20), mode="RGBA", color=(0, 0, 0, 0))
    image = services.item_image_create(item=item, content=data, filename="a.png", derivatives="now")
    pixel = open_stored(image.display).convert("RGB").getpixel((10, 10))
    assert min(pixel) > 245


def test_exif_orientation_is_applied_to_derivatives(item):
    data = image_bytes(size=(60, 20), fmt="JPEG", exif_orientation=6)  # rotate 90° on display
    image = services.item_image_create(item=item, content=data, filename="r.jpg", derivatives="now")
    assert (image.width, image.height) == (20, 60)
    assert open_stored(image.display).size == (20, 60)
    assert stored_file_read(image.original) == data


def test_large_image_gets_smaller_derivatives(item):
    data = image_bytes(size=(2000, 1000), fmt="JPEG")
    image = services.item_image_create(
        item=item, content=data, filename="big.jpg", derivatives="now"
    )
    assert image.iiif_sizes() == [(256, 128), (1600, 800)]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"not an image at all", "not an image"),
        (image_bytes(fmt="PNG")[:60], "damaged"),
    ],
)
def test_bad_uploads_are_rejected_with_a_reason_and_leave_nothing(item, content, reason):
    files_before = StoredFile.objects.count()
    with pytest.raises(ValidationError) as error:
        services.item_image_create(item=item, content=content, filename="bad.png")
    assert reason in str(error.value.message_dict["file"])
    assert StoredFile.objects.count() == files_before
    assert ItemImage.objects.count() == 0


def test_size_and_pixel_limits(item, settings):
    settings.ATELIER_MAX_IMAGE_BYTES = 100
    with pytest.raises(ValidationError, match="limit is 100 bytes"):
        services.item_image_create(item=item, content=image_bytes(size=(64, 64)), filename="x.png")
    settings.ATELIER_MAX_IMAGE_BYTES = 10_000_000
    settings.ATELIER_MAX_IMAGE_PIXELS = 1000
    # A tiny file that decodes to many pixels: the classic decompression bomb.
    bomb = image_bytes(size=(4000, 4000), mode="L", color=0)
    assert len(bomb) < 100_000
    with pytest.raises(ValidationError, match="decompression bomb"):
        services.item_image_create(item=item, content=bomb, filename="bomb.png")
    assert ItemImage.objects.count() == 0


def test_failure_after_storing_leaves_no_orphan_file(item, monkeypatch):
    names_before = set(default_storage.listdir("")[0]) if default_storage.exists("") else set()

    def boom(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "item_image_make_derivatives", boom)
    with pytest.raises(RuntimeError):
        services.item_image_create(
            item=item, content=image_bytes(), filename="o.png", derivatives="now"
        )
    assert StoredFile.objects.count() == 0
    assert not default_storage.exists("heritage/originals/A-1/o.png")
    assert names_before <= (
        set(default_storage.listdir("")[0]) if default_storage.exists("") else set()
    )


def test_dataset_captions_split_hash_freeze_and_versions(catalogue):
    dataset = services.training_dataset_create(
        name="atlas", collections=["atlas"], resolution=32, validation_fraction=0.25, seed=1
    )
    examples = list(dataset_examples(dataset))
    # The unpublished item is left out (and named); captions start from the curator's words.
    assert len(examples) == 3 and dataset.version == 1 and not dataset.frozen
    assert [(e["accession_number"], e["reason"]) for e in dataset.selection["excluded"]] == [
        ("ATL-003", "unpublished")
    ]
    assert any("ATL-003" in note for note in dataset.build_notes)
    first = next(e for e in examples if e.image.item.accession_number == "ATL-000")
    assert first.caption == "[U], Warp-dyed silk, tassel"
    assert first.category == "iconographic"
    assert [e.split for e in examples].count("validation") == 1
    # Editable before freezing.
    services.training_example_update(example=first, caption="[U], red tassel silk")
    frozen = services.training_dataset_freeze(dataset=dataset)
    assert frozen.frozen and len(frozen.content_hash) == 64
    for example in dataset_examples(frozen):
        crop = open_stored(example.crop)
        # at its aspect-ratio bucket of about 32 x 32 pixels (issue 20), as the page shows
        width, height = map(int, example.bucket.split("x"))
        assert crop.size == (width, height) and crop.mode == "RGB"
        assert width * height <= 32 * 32 and width % 8 == 0 and height % 8 == 0
    assert len(dataset_examples(frozen, split="train")) == 2
    assert services.dataset_content_hash(frozen) == frozen.content_hash
    # Frozen never changes.
    with pytest.raises(ValidationError, match="frozen"):
        services.training_example_update(example=first, caption="changed")
    first.refresh_from_db()
    assert first.caption == "[U], red tassel silk"
    # Edits make a new version.
    draft = services.training_dataset_new_version(dataset=frozen)
    assert (draft.version, draft.frozen, draft.parent_id) == (2, False, frozen.pk)
    edited = draft.examples.get(image=first.image)
    services.training_example_update(example=edited, caption="[U], new words")
    second = services.training_dataset_freeze(dataset=draft)
    assert second.content_hash != frozen.content_hash
    assert TrainingDataset.objects.get(pk=frozen.pk).content_hash == frozen.content_hash


def test_a_dataset_changed_while_freezing_is_not_frozen(catalogue):
    """The crops are made outside any transaction; the flip re-checks the examples."""
    dataset = services.training_dataset_create(
        name="atlas", collections=["atlas"], resolution=32, include_unpublished=True
    )
    victim = dataset.examples.order_by("pk").last()

    def remove_one_midway(fraction: float, message: str) -> None:
        if victim.pk and fraction < 1:  # another writer, between two crops
            TrainingExample.objects.filter(pk=victim.pk).delete()
            victim.pk = None

    with pytest.raises(ValidationError, match="changed while it was being frozen"):
        services.training_dataset_freeze(dataset=dataset, progress=remove_one_midway)
    dataset.refresh_from_db()
    assert not dataset.frozen and dataset.content_hash == ""
    again = services.training_dataset_freeze(dataset=dataset)  # nothing changes now: frozen
    assert again.frozen and again.examples.count() == 3


def test_split_is_stratified_by_category():
    strata = {i: ("a" if i < 10 else "b") for i in range(20)}
    split = services.split_stratified(strata, validation_fraction=0.2, seed=3)
    val = [k for k, v in split.items() if v == "validation"]
    assert len([k for k in val if k < 10]) == 2 and len([k for k in val if k >= 10]) == 2
    assert split == services.split_stratified(strata, validation_fraction=0.2, seed=3)


def test_dataset_selection_errors(catalogue):
    with pytest.raises(ValidationError, match="No catalogue images"):
        services.training_dataset_create(name="x", motifs=["pomegranate"])
    with pytest.raises(ValidationError):
        services.training_dataset_create(name="x", categories=["poetic"])
    only = services.training_dataset_create(name="y", categories=["directional"], resolution=16)
    assert only.examples.count() == 1
