"""Bring the queue back in line with the Job table, which is the truth.

* queued jobs whose id is no longer in Redis (FLUSHALL, a restart without persistence) are
  pushed again;
* running jobs whose worker is gone (SIGKILL, power loss) are re-queued while attempts remain,
  else marked failed.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from archives.jobqueue import push_to_queue
from archives.models import Job

logger = logging.getLogger(__name__)


def _live_worker_names() -> set[str]:
    import django_rq
    from rq import Worker

    return {worker.name for worker in Worker.all(connection=django_rq.get_connection("default"))}


def _queued_ids(queue_name: str) -> set[str]:
    import django_rq

    queue = django_rq.get_queue(queue_name)
    return set(queue.get_job_ids())


def jobs_reconcile() -> dict[str, int]:
    report = {"requeued_lost": 0, "requeued_orphaned": 0, "failed_orphaned": 0}
    queued_in_redis = {name: _queued_ids(name) for name in ("default", "gpu")}
    for job in Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False):
        if str(job.id) not in queued_in_redis.get(job.queue, set()):
            push_to_queue(job)
            report["requeued_lost"] += 1

    live = _live_worker_names()
    for job in Job.objects.filter(status=Job.Status.RUNNING).exclude(worker_name__in=live):
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            if locked.status != Job.Status.RUNNING or locked.worker_name in live:
                continue
            if locked.cancel_requested:
                locked.status, locked.finished_at = Job.Status.CANCELLED, timezone.now()
                locked.message = "cancelled (its worker died)"
                locked.save()
            elif locked.attempts < locked.max_attempts:
                locked.status = Job.Status.QUEUED
                locked.message = f"re-queued: worker {locked.worker_name} died"
                locked.worker_name = ""
                locked.save()
                transaction.on_commit(lambda j=locked: push_to_queue(j))
                report["requeued_orphaned"] += 1
            else:
                locked.status, locked.finished_at = Job.Status.FAILED, timezone.now()
                locked.error = f"worker {locked.worker_name} died; no attempts left"
                locked.message = "failed: worker died"
                locked.save()
                report["failed_orphaned"] += 1
    if any(report.values()):
        logger.info("reconciled jobs: %s", report)
    return report
