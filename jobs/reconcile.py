"""Bring the queue back in line with the Job table, which is the truth.

* queued jobs whose id is no longer on their RQ queue (FLUSHALL, a Redis restart without
  persistence) are pushed again; a second delivery of one that was in flight does nothing,
  because ``run_job`` claims the row atomically;
* running jobs whose worker is dead (SIGKILL, power loss) are re-queued while attempts
  remain, else marked failed; a dead worker's job that was being cancelled ends cancelled.

A worker that ran on this host is dead when its process is gone; one on another host when its
heartbeat row (``jobqueue.worker_heartbeat_start``, in the database, so a flushed Redis does
not make live workers look dead) has gone stale. Runs at every worker start and as
``manage.py reconcile_jobs`` (``--every 60`` to keep running).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from jobs.models import Job, WorkerHeartbeat
from jobs.queue import QUEUES, push_to_queue, worker_is_alive

logger = logging.getLogger(__name__)


def _queued_ids(queue_name: str) -> set[str]:
    import django_rq

    return set(django_rq.get_queue(queue_name).get_job_ids())


def _dead_workers(names: set[str]) -> set[str]:
    return {name for name in names if not worker_is_alive(name)}


def _requeue_lost() -> int:
    queued_in_redis = {name: _queued_ids(name) for name in QUEUES}
    pushed = 0
    for job in Job.objects.filter(status=Job.Status.QUEUED, cancel_requested=False):
        if str(job.id) not in queued_in_redis.get(job.queue, set()):
            push_to_queue(job)
            pushed += 1
    return pushed


def _resolve_orphans(report: dict[str, int]) -> None:
    running = Job.objects.filter(status=Job.Status.RUNNING)
    dead = _dead_workers(set(running.values_list("worker_name", flat=True)))
    for job in running.filter(worker_name__in=dead):
        with transaction.atomic():
            locked = Job.objects.select_for_update().get(pk=job.pk)
            if locked.status != Job.Status.RUNNING or locked.worker_name not in dead:
                continue  # finished or claimed again meanwhile
            dead_name = locked.worker_name
            locked.worker_name = ""
            locked.heartbeat_at = timezone.now()
            if locked.cancel_requested:
                locked.status, locked.finished_at = Job.Status.CANCELLED, timezone.now()
                locked.message = "cancelled (its worker died)"
                report["cancelled_orphaned"] += 1
            elif locked.attempts < locked.max_attempts:
                locked.status = Job.Status.QUEUED
                locked.progress = 0.0
                locked.message = (
                    f"re-queued: worker {dead_name} died "
                    f"(attempt {locked.attempts} of {locked.max_attempts})"
                )
                transaction.on_commit(lambda j=locked: push_to_queue(j))
                report["requeued_orphaned"] += 1
            else:
                locked.status, locked.finished_at = Job.Status.FAILED, timezone.now()
                locked.error = (
                    f"worker {dead_name} died while running this job; "
                    f"all {locked.max_attempts} attempts used"
                )
                locked.message = "failed: worker died"
                report["failed_orphaned"] += 1
            locked.save()


def jobs_reconcile() -> dict[str, int]:
    """One pass; returns what it did (all zeros when queue and table agree)."""
    report = {
        "requeued_lost": 0,
        "requeued_orphaned": 0,
        "failed_orphaned": 0,
        "cancelled_orphaned": 0,
    }
    # Orphans first: a job they re-queue is pushed on commit, so the lost-job pass sees it.
    _resolve_orphans(report)
    report["requeued_lost"] = _requeue_lost()
    # Rows of workers killed long ago (a clean shutdown deletes its own row).
    WorkerHeartbeat.objects.filter(last_seen__lt=timezone.now() - timedelta(days=1)).delete()
    if any(report.values()):
        logger.info("reconciled jobs: %s", report)
    return report
