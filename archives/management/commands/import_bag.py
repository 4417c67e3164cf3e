"""Import an Atelier bag (tar or zip): validated first, then all or nothing.

python manage.py import_bag bag.tar [--user USERNAME]
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from archives.bagit_import import bag_import
from archives.bagit_validate import BagRefused


class Command(BaseCommand):
    help = "Validate and import an Atelier BagIt bag; nothing is written when it is refused."

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--user", help="Username recorded as the importer.")

    def handle(self, *args, archive: str, user: str | None, **options):
        importer = get_user_model().objects.get(username=user) if user else None
        try:
            done = bag_import(path=archive, user=importer)
        except BagRefused as exc:
            for problem in exc.problems:
                self.stderr.write(f"- {problem}")
            raise CommandError("the bag was refused; nothing was imported") from exc
        counts = ", ".join(f"{n} {label}" for label, n in sorted(done.records.items()))
        self.stdout.write(f"imported {done.bag_name}: {counts}")
