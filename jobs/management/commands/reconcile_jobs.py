"""Re-queue jobs the queue lost and resolve jobs of dead workers.

python manage.py reconcile_jobs            # one pass
python manage.py reconcile_jobs --every 60 # keep reconciling (a systemd unit or container)
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Bring the RQ queues back in line with the Job table."

    def add_arguments(self, parser):
        parser.add_argument(
            "--every", type=float, default=0, help="Repeat every this many seconds (0 = once)."
        )

    def handle(self, *args, every, **options):
        from jobs.reconcile import jobs_reconcile

        while True:
            report = jobs_reconcile()
            if every <= 0 or any(report.values()):
                self.stdout.write(" ".join(f"{key}={value}" for key, value in report.items()))
                self.stdout.flush()
            if every <= 0:
                return
            time.sleep(every)
