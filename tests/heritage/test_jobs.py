"""The heritage.derivatives and heritage.dataset_freeze jobs in a real RQ worker process
(default queue)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from heritage import services
from heritage.models import ItemImage, TrainingDataset
from jobs.models import Job
from tests.conftest import make_user, wait_for
from tests.heritage.conftest import image_bytes


@pytest.mark.worker
def test_upload_then_worker_makes_derivatives_and_freezes_a_dataset(start_worker):
    collection = services.collection_create(slug="c", title={"en": "C"}, published=True)
    item = services.item_create(
        collection=collection, accession_number="W-1", title={"en": "W"}, published=True
    )
    client = APIClient()
    client.force_login(make_user("cur", "curator"))
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("w.png", image_bytes(size=(300, 200), mode="RGBA"))
    response = client.post("/api/v1/images/", {"item": "W-1", "file": upload}, format="multipart")
    assert response.status_code == 201, response.content
    image_id = response.json()["id"]
    services.annotation_create(
        image=ItemImage.objects.get(pk=image_id),
        category="directional",
        motifs=[services.motif_term_get_or_create(slug="fence")],
    )
    dataset = services.training_dataset_create(name="w", resolution=32, items=["W-1"])
    # Before a worker runs: the freeze is queued and the dataset reads "freezing".
    freeze = client.post(f"/api/v1/datasets/{dataset.pk}/freeze/")
    assert freeze.status_code == 202
    job_id = freeze.json()["job"]
    assert Job.objects.get(pk=job_id).kind == "heritage.dataset_freeze"
    body = client.get(f"/api/v1/datasets/{dataset.pk}/").json()
    assert (body["state"], body["freeze_job"], body["frozen"]) == ("freezing", job_id, False)
    # While it is freezing: asking again gives the same job; edits are refused, unchanged.
    assert client.post(f"/api/v1/datasets/{dataset.pk}/freeze/").json()["job"] == job_id
    example = dataset.examples.get()
    edit = client.patch(
        f"/api/v1/datasets/{dataset.pk}/examples/{example.pk}/",
        {"caption": "[U], changed"},
        format="json",
    )
    assert edit.status_code == 400 and "being frozen" in edit.content.decode()
    worker = start_worker(("default",))
    wait_for(
        lambda: ItemImage.objects.get(pk=image_id).derivatives_ready,
        message=f"derivatives not made; worker log:\n{worker.output()}",
    )
    info = client.get(f"/iiif/image/{image_id}/info.json").json()
    assert info["sizes"] == [{"width": 256, "height": 171}, {"width": 300, "height": 200}]
    job = Job.objects.get(kind="heritage.derivatives", params={"image_id": image_id})
    assert job.status == "succeeded" and job.result["sizes"] == [[256, 171], [300, 200]]

    wait_for(lambda: TrainingDataset.objects.get(pk=dataset.pk).frozen)
    frozen = TrainingDataset.objects.get(pk=dataset.pk)
    assert frozen.examples.get().crop is not None and len(frozen.content_hash) == 64
    assert frozen.examples.get().caption == example.caption
    assert client.get(f"/api/v1/datasets/{dataset.pk}/").json()["state"] == "frozen"
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded" and job.progress == 1.0
    assert job.result["content_hash"] == frozen.content_hash
    assert item.images.count() == 1
