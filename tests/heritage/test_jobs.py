"""The heritage.derivatives job in a real RQ worker process (default queue)."""

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
    worker = start_worker(("default",))
    wait_for(
        lambda: ItemImage.objects.get(pk=image_id).derivatives_ready,
        timeout=60,
        message=f"derivatives not made; worker log:\n{worker.output()}",
    )
    info = client.get(f"/iiif/image/{image_id}/info.json").json()
    assert info["sizes"] == [{"width": 256, "height": 171}, {"width": 300, "height": 200}]
    job = Job.objects.get(kind="heritage.derivatives", params={"image_id": image_id})
    assert job.status == "succeeded" and job.result["sizes"] == [[256, 171], [300, 200]]

    dataset = services.training_dataset_create(name="w", resolution=32, items=["W-1"])
    freeze = client.post(f"/api/v1/datasets/{dataset.pk}/freeze/")
    assert freeze.status_code == 202
    wait_for(lambda: TrainingDataset.objects.get(pk=dataset.pk).frozen, timeout=60)
    frozen = TrainingDataset.objects.get(pk=dataset.pk)
    assert frozen.examples.get().crop is not None and len(frozen.content_hash) == 64
    assert item.images.count() == 1
