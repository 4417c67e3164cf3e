"""Run an RQ worker on Atelier's queues, reconciling lost and orphaned jobs first.

    python manage.py atelier_worker gpu
    python manage.py atelier_worker default gpu --burst

It is a SimpleWorker (no fork per job) so a gpu worker keeps loaded pipelines warm between jobs.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from archives.jobqueue import QUEUES


class Command(BaseCommand):
    help = "Run an Atelier RQ worker (reconciles the job table first)."

    def add_arguments(self, parser):
        parser.add_argument("queues", nargs="*", default=list(QUEUES), choices=QUEUES)
        parser.add_argument("--burst", action="store_true", help="Exit when the queues are empty.")
        parser.add_argument("--name", default=None, help="Worker name (default: host:pid).")

    def handle(self, *args, queues, burst, name, **options):
        import django_rq
        from rq import SimpleWorker

        from archives.jobqueue import worker_identity
        from archives.reconcile import jobs_reconcile

        report = jobs_reconcile()
        self.stdout.write(f"reconciled: {report}")
        connection = django_rq.get_connection(queues[0])
        worker = SimpleWorker(
            [django_rq.get_queue(q) for q in queues],
            connection=connection,
            name=name or worker_identity(),
            worker_ttl=30,
        )
        worker.work(burst=burst, logging_level="INFO")
