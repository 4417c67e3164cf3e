"""Run an RQ worker on Atelier's queues, reconciling lost and orphaned jobs first.

    python manage.py atelier_worker gpu
    python manage.py atelier_worker default gpu --burst

It is a SimpleWorker (no fork per job) so a gpu worker keeps loaded pipelines warm between jobs.
A thread writes the worker's heartbeat row in the database every few seconds, so health and
the reconciler can tell this worker is alive even while a long job holds the main thread, and
even after Redis restarted empty. On a clean shutdown the row is deleted.
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand

from jobs.queue import QUEUES

logger = logging.getLogger(__name__)


def atelier_worker_class():
    from rq import SimpleWorker, worker_registration

    class AtelierWorker(SimpleWorker):
        """Registers itself again when Redis lost its record (a restart without persistence,
        FLUSHALL). RQ's heartbeat only refreshes the worker's hash: without this the worker
        keeps taking jobs but is missing from RQ's worker lists (the dashboard, Worker.all)."""

        def heartbeat(self, timeout=None, pipeline=None):
            super().heartbeat(timeout, pipeline)
            if pipeline is not None:
                return
            if self.connection.sismember(self.redis_workers_keys, self.key):
                return
            logger.warning("worker %s: Redis lost its registration; registering again", self.name)
            with self.connection.pipeline() as p:
                p.hset(self.key, mapping=self.serialize())
                worker_registration.register(self, p)
                p.expire(self.key, self.worker_ttl + 60)
                p.execute()

    return AtelierWorker


class Command(BaseCommand):
    help = "Run an Atelier RQ worker (reconciles the job table first)."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", default=list(QUEUES), choices=QUEUES)
        parser.add_argument("--burst", action="store_true", help="Exit when the queues are empty.")

    def handle(self, *args, queues, burst, **options):
        import django_rq

        from jobs.queue import worker_heartbeat_start, worker_identity
        from jobs.reconcile import jobs_reconcile

        # Job rows record this name; the reconciler reads host and pid from it.
        name = worker_identity()
        connection = django_rq.get_connection(queues[0])
        stop_beating = worker_heartbeat_start(name=name, queues=queues)
        try:
            report = jobs_reconcile()
            self.stdout.write(f"worker {name} on {', '.join(queues)}; reconciled: {report}")
            self.stdout.flush()
            worker = atelier_worker_class()(
                [django_rq.get_queue(q) for q in queues],
                connection=connection,
                name=name,
                worker_ttl=30,
            )
            worker.work(burst=burst, logging_level="INFO")
        finally:
            stop_beating()
