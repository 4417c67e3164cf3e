"""Validate an archived BagIt bag (tar or zip) without writing anything.

python manage.py validate_bag bag.tar [--json]
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from archives.bagit_validate import bag_validate


class Command(BaseCommand):
    help = "Validate a BagIt bag archived as tar or zip; list every problem."

    def add_arguments(self, parser):
        parser.add_argument("archive")
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args, archive: str, json: bool, **options):
        report = bag_validate(archive)
        if json:
            self.stdout.write(_json_dumps(report.as_dict()))
        elif report.valid:
            self.stdout.write(
                f"valid: {report.bag_name} (BagIt {report.version}), "
                f"{report.payload_files} payload files, {report.payload_bytes} bytes"
            )
        else:
            for problem in report.problems:
                self.stderr.write(f"- {problem}")
        if not report.valid:
            raise CommandError(f"the bag is not valid ({len(report.problems)} problems)")


def _json_dumps(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
