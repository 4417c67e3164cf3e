"""Background jobs of the heritage app (default queue; no torch here)."""

from __future__ import annotations

from jobs.models import Job
from jobs.queue import job_handler, job_progress


@job_handler("heritage.derivatives", queue="default", timeout=30 * 60)
def make_derivatives(job: Job) -> dict:
    """An image's thumbnail and display derivatives (params ``image_id``)."""
    from heritage import services
    from heritage.models import ItemImage

    image = ItemImage.objects.get(pk=job.params["image_id"])
    job_progress(job, 0.1, "making thumbnail and display image")
    image = services.item_image_make_derivatives(image=image, force=job.params.get("force"))
    return {"image_id": image.pk, "sizes": [list(size) for size in image.iiif_sizes()]}


@job_handler("heritage.dataset_freeze", queue="default", timeout=30 * 60)
def dataset_freeze(job: Job) -> dict:
    """A dataset's training crops, content hash and freeze (params ``dataset_id``)."""
    from heritage import services
    from heritage.models import TrainingDataset

    dataset = TrainingDataset.objects.get(pk=job.params["dataset_id"])
    dataset = services.training_dataset_freeze(
        dataset=dataset, progress=lambda f, m: job_progress(job, 0.95 * f, m)
    )
    return {
        "dataset_id": dataset.pk,
        "content_hash": dataset.content_hash,
        "examples": dataset.examples.count(),
    }
