"""Run an RQ worker on Atelier's queues, reconciling lost and orphaned jobs first.

    python manage.py atelier_worker gpu
    python manage.py atelier_worker default gpu --burst

It is a SimpleWorker (no fork per job) so a gpu worker keeps loaded pipelines warm between jobs.
A thread beats a short-lived Redis key so the reconciler can tell this worker is alive even
while a long job holds the main thread.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from archives.jobqueue import QUEUES


class Command(BaseCommand):
    help = "Run an Atelier RQ worker (reconciles the job table first)."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", default=list(QUEUES), choices=QUEUES)
        parser.add_argument("--burst", action="store_true", help="Exit when the queues are empty.")

    def handle(self, *args, queues, burst, **options):
        import django_rq
        from rq import SimpleWorker

        from archives.jobqueue import worker_heartbeat_start, worker_identity
        from archives.reconcile import jobs_reconcile

        # Job rows record this name; the reconciler reads host and pid from it.
        name = worker_identity()
        connection = django_rq.get_connection(queues[0])
        stop_beating = worker_heartbeat_start(name, connection)
        try:
            report = jobs_reconcile()
            self.stdout.write(f"worker {name} on {', '.join(queues)}; reconciled: {report}")
            self.stdout.flush()
            worker = SimpleWorker(
                [django_rq.get_queue(q) for q in queues],
                connection=connection,
                name=name,
                worker_ttl=30,
            )
            worker.work(burst=burst, logging_level="INFO")
        finally:
            stop_beating.set()
