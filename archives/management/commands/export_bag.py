"""Export a collection, training run or study as a BagIt bag.

python manage.py export_bag collection atlas-silk out.tar
python manage.py export_bag training_run 3 out.zip
python manage.py export_bag study 1 --queue        # as a job; the archive is stored
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from archives.bag_registry import bag_scopes
from archives.bagit_export import ExportError, bag_export_enqueue, bag_export_file
from core.errors import DomainError


class Command(BaseCommand):
    help = "Export a collection, training run or study as a BagIt bag (tar or zip)."

    def add_arguments(self, parser):
        parser.add_argument("scope", choices=sorted(bag_scopes()))
        parser.add_argument("target", help="Primary key (or a collection's slug).")
        parser.add_argument("output", nargs="?", help="Archive path ending in .tar or .zip.")
        parser.add_argument("--format", choices=["tar", "zip"], default=None)
        parser.add_argument("--queue", action="store_true", help="Queue a job instead.")

    def handle(self, *args, scope, target, output, format, queue, **options):
        try:
            if queue:
                export = bag_export_enqueue(
                    scope=scope, target_id=target, archive_format=format or "tar"
                )
                self.stdout.write(f"export {export.pk} queued as job {export.job_id}")
                return
            if not output:
                raise CommandError("give an output path, or --queue")
            path = Path(output)
            archive_format = format or ("zip" if path.suffix == ".zip" else "tar")
            built = bag_export_file(
                scope=scope,
                target_id=target,
                archive_format=archive_format,
                target=path,
                progress=lambda fraction, message: self.stderr.write(f"{fraction:4.0%} {message}"),
            )
        except (DomainError, ExportError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"wrote {path} ({built.name}: {built.payload_files} files, {built.payload_bytes} bytes)"
        )
