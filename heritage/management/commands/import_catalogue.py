"""Bulk import: ``manage.py import_catalogue SHEET.csv|SHEET.json [--images FOLDER]``.

Idempotent; prints counts and every rejected row with its reason (exit status 1 if any).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from heritage import bulk


class Command(BaseCommand):
    help = "Import items, images and annotations from a CSV or JSON sheet and a folder of images."

    def add_arguments(self, parser):
        parser.add_argument("sheet", type=Path)
        parser.add_argument("--images", type=Path, help="folder of images (default: the sheet's)")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, sheet: Path, images: Path | None, **options):
        if not sheet.is_file():
            raise CommandError(f"no sheet at {sheet}")
        file_format = sheet.suffix.lower().lstrip(".")
        try:
            rows = bulk.parse_sheet(sheet.read_bytes(), file_format=file_format)
        except Exception as exc:
            raise CommandError(str(exc)) from None
        report = bulk.catalogue_import(
            rows=rows, images=bulk.folder_images(images or sheet.parent)
        ).as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            self.stdout.write(
                "created {created}, updated {updated}, unchanged {unchanged}, images added "
                "{images_added}, annotations added {annotations_added}, rejected {n}".format(
                    n=len(report["rejected"]), **report
                )
            )
            for row in report["rejected"]:
                self.stdout.write(
                    f"  row {row['row']} ({row['accession_number']}): {row['reason']}"
                )
        if report["rejected"]:
            raise SystemExit(1)
