"""RQ entry points of the evaluation app (take an id, fetch, call a service)."""

from __future__ import annotations

from jobs.models import Job
from jobs.queue import job_handler, job_progress


@job_handler("evaluation.metrics", queue="default", timeout=3600)
def compute_metrics(job: Job) -> dict:
    """MSE/PSNR/SSIM against references and the memorisation check of a study's images."""
    from evaluation.models import Study
    from evaluation.services import study_metrics_run

    study = Study.objects.get(pk=job.params["study_id"])
    return study_metrics_run(study=study, job=job)


@job_handler("evaluation.approval_check", queue="default", timeout=1800)
def approval_check(job: Job) -> dict:
    """The near-copy check of an image a curator approved (SSIM against every training crop),
    then the approval itself; a refusal (near copy, open study) fails the job with it."""
    from django.contrib.auth import get_user_model

    from evaluation.services import memorisation_check_images
    from generation.models import GeneratedImage
    from generation.services import generated_image_approve

    image = GeneratedImage.objects.get(pk=job.params["image_id"])
    user = get_user_model().objects.filter(pk=job.params.get("user_id")).first()
    job_progress(job, 0.1, "comparing the image with the training images")
    memorisation_check_images(generated_image_ids=[image.pk])
    job_progress(job, 0.9, "approving")
    image = generated_image_approve(image=image, approved=True, user=user)
    return {"image_id": image.pk, "approved": image.approved, "message": "Approved for the kiosk."}
