"""RQ entry points of the evaluation app (take an id, fetch, call a service)."""

from __future__ import annotations

from jobs.models import Job
from jobs.queue import job_handler


@job_handler("evaluation.metrics", queue="default", timeout=3600)
def compute_metrics(job: Job) -> dict:
    """MSE/PSNR/SSIM against references and the memorisation check of a study's images."""
    from evaluation.models import Study
    from evaluation.services import study_metrics_run

    study = Study.objects.get(pk=job.params["study_id"])
    return study_metrics_run(study=study, job=job)
