"""The jobs room's own job kind: a self-test of the queue (apps register theirs in their own
jobs.py, found by ``JobsConfig.ready``)."""

from __future__ import annotations

import time

from jobs.models import Job
from jobs.queue import job_handler, job_progress

SELFTEST_RUNS_KEY = "atelier:selftest:runs"


@job_handler("jobs.selftest", queue="default", timeout=120)
def selftest(job: Job) -> dict:
    """Count to ``steps``, sleeping ``sleep`` s each: exercises progress, cancel and recovery.

    Every start is counted in a Redis hash (job id → runs) so tests and operators can check
    that a job ran exactly once.
    """
    import django_rq

    django_rq.get_connection("default").hincrby(SELFTEST_RUNS_KEY, str(job.pk), 1)
    steps = int(job.params.get("steps", 3))
    for step in range(steps):
        time.sleep(float(job.params.get("sleep", 0.05)))
        job_progress(job, (step + 1) / steps, f"step {step + 1} of {steps}", data={"step": step})
    if job.params.get("fail"):
        raise RuntimeError(str(job.params["fail"]))
    return {"counted": steps}
