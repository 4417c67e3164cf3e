"""Issue 16: dataset captions start from the curator's words (a template), are editable per
example before freezing, and unpublished or un-captioned images are left out unless asked."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from heritage import services
from heritage.models import TrainingExample
from tests.heritage.conftest import image_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def paintings(db):
    """Landscapes: one captioned image, one item with a description only, one unpublished,
    one with nothing (no caption, description, title or annotation)."""
    collection = services.collection_create(slug="ls", title={"en": "L"}, published=True)
    made = {}
    for key, published, title, description, caption in [
        ("cap", True, "River view", "", "Mist over the river, two pavilions."),
        ("desc", True, "Pine hill", "Pines on a steep hill.", ""),
        ("hidden", False, "Private scroll", "Not for the public.", ""),
        ("bare", True, "", "", ""),
    ]:
        item = services.item_create(
            collection=collection,
            accession_number=f"LS-{key}",
            title={"en": title} if title else {},
            description={"en": description} if description else {},
            published=published,
        )
        made[key] = services.item_image_create(
            item=item,
            content=image_bytes(size=(40, 40)),
            filename=f"{key}.png",
            derivatives="none",
            caption={"en": caption} if caption else None,
        )
    return made


def test_captions_follow_the_template_and_leave_out_what_is_unfit(paintings):
    dataset = services.training_dataset_create(name="ls", collections=["ls"], resolution=32)
    captions = {e.image_id: e.caption for e in dataset.examples.all()}
    assert captions == {
        paintings["cap"].pk: "[U], Mist over the river, two pavilions",
        paintings["desc"].pk: "[U], Pines on a steep hill",
    }
    excluded = {e["accession_number"]: e["reason"] for e in dataset.selection["excluded"]}
    assert excluded == {
        "LS-hidden": "unpublished",
        "LS-bare": "no caption, description, title or motif term",
    }
    assert dataset.caption_template == "{trigger}, {caption}, {motifs}"
    everything = services.training_dataset_create(
        name="ls-all",
        collections=["ls"],
        resolution=32,
        include_unpublished=True,
        include_uncaptioned=True,
        caption_template="{trigger}, {title}, {caption}",
    )
    assert everything.examples.count() == 4 and everything.selection["excluded"] == []
    bare = everything.examples.get(image=paintings["bare"])
    assert bare.caption == "[U]"
    assert everything.examples.get(image=paintings["desc"]).caption == (
        "[U], Pine hill, Pines on a steep hill"
    )


def test_a_template_is_checked_edited_per_example_and_reapplied(paintings):
    with pytest.raises(ValidationError, match="Unknown field"):
        services.training_dataset_create(
            name="bad", collections=["ls"], resolution=32, caption_template="{trigger}, {colour}"
        )
    assert not TrainingExample.objects.exists()
    dataset = services.training_dataset_create(name="ls", collections=["ls"], resolution=32)
    example = dataset.examples.get(image=paintings["cap"])
    services.training_example_update(example=example, caption="[U], my own words")
    services.training_dataset_recaption(dataset=dataset, caption_template="{caption} in {trigger}")
    example.refresh_from_db()
    assert example.caption == "Mist over the river, two pavilions in [U]"
    frozen = services.training_dataset_freeze(dataset=dataset)
    with pytest.raises(ValidationError, match="frozen"):
        services.training_dataset_recaption(dataset=frozen, caption_template="{trigger}")


def test_everything_left_out_is_refused_with_reasons(paintings):
    with pytest.raises(ValidationError, match="ask for unpublished or un-captioned"):
        services.training_dataset_create(name="x", items=["LS-hidden", "LS-bare"], resolution=32)


def test_api_template_and_recaption(curator, paintings):
    curator_client = APIClient()
    curator_client.force_authenticate(curator)
    response = curator_client.post(
        "/api/v1/datasets/",
        {"name": "api", "collections": ["ls"], "resolution": 32, "caption_template": "{x}"},
        format="json",
    )
    assert response.status_code == 400 and "Unknown field" in response.content.decode()
    response = curator_client.post(
        "/api/v1/datasets/",
        {"name": "api", "collections": ["ls"], "resolution": 32, "include_unpublished": True},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["caption_template"] == "{trigger}, {caption}, {motifs}"
    assert [e["accession_number"] for e in body["selection"]["excluded"]] == ["LS-bare"]
    again = curator_client.post(
        f"/api/v1/datasets/{body['id']}/recaption/",
        {"caption_template": "{title}, {trigger}"},
        format="json",
    )
    assert again.status_code == 200 and again.json()["caption_template"] == "{title}, {trigger}"
    examples = curator_client.get(f"/api/v1/datasets/{body['id']}/examples/").json()["results"]
    assert "River view, [U]" in {e["caption"] for e in examples}
