"""Job kinds of the archives app."""

from __future__ import annotations

import time

from archives.jobqueue import job_handler, job_progress
from archives.models import Job


@job_handler("archives.selftest", queue="default", timeout=120)
def selftest(job: Job) -> dict:
    """A job that counts to ``steps``, sleeping ``sleep`` s each: exercises progress and cancel."""
    steps = int(job.params.get("steps", 3))
    for step in range(steps):
        time.sleep(float(job.params.get("sleep", 0.05)))
        job_progress(job, (step + 1) / steps, f"step {step + 1} of {steps}")
    return {"counted": steps}
