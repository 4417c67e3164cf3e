"""Re-hash every stored file against its recorded sha256 (for cron).

python manage.py check_fixity          # queue the job on the default queue
python manage.py check_fixity --now    # run here and now; exit status 1 on any problem
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from archives.fixity import fixity_check, fixity_enqueue


class Command(BaseCommand):
    help = "Check the fixity of every stored file (queued as a job, or --now)."

    def add_arguments(self, parser):
        parser.add_argument("--now", action="store_true", help="Run in this process.")

    def handle(self, *args, now: bool, **options):
        if not now:
            job = fixity_enqueue(trigger="schedule")
            self.stdout.write(f"fixity job {job.pk} is {job.status}")
            return
        event = fixity_check(trigger="schedule")
        self.stdout.write(
            f"checked {event.checked}: {event.ok_count} ok, {event.changed_count} changed, "
            f"{event.missing_count} missing"
        )
        for entry in event.changed:
            self.stdout.write(f"CHANGED {entry['name']}")
        for entry in event.missing:
            self.stdout.write(f"MISSING {entry['name']}")
        if event.outcome != "success":
            raise CommandError("fixity problems found")
