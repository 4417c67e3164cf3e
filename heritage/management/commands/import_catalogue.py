"""Bulk import: ``manage.py import_catalogue SHEET.csv|SHEET.json [--images FOLDER]``.

Idempotent; prints counts and every rejected row with its reason (exit status 1 if any).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from heritage import bulk

SHEET_HELP = """\
Import items, images and annotations from a CSV or JSON sheet and a folder of images.

A row is one item and, optionally, one image of it and one annotation of that image. CSV has a
header line; JSON is a list of objects with the same keys (or {"items": [...]}). Columns (all
optional but accession_number and collection; unknown columns are ignored):

  accession_number   the item's key: a new number creates an item, a known one updates it
  collection         slug of an existing collection
  title_en title_zh title_ug, description_en/_zh/_ug, credit_line_en/_zh/_ug
                     one column per language (ug is Uyghur); the title defaults to the number
  period place provenance   free text
  rights             a rightsstatements.org or creativecommons.org URI
  published          true/false (also yes/no, 1/0; empty is false); no column: unchanged
  image              file name inside --images (default: the sheet's folder)
  category           iconographic | directional | cultural_semiotic (needs image)
  motifs             motif term slugs separated by ";" (the terms must exist)
  meaning_en meaning_zh meaning_ug   the annotation's reading
  region             "x,y,w,h" in pixels of the original image

Each row is checked and written on its own: a bad row is refused with its reason and leaves
nothing; re-running a sheet changes nothing. docs/curators-guide.md has a template; the curator
page /curator/catalogue/import/ previews a sheet before importing it.
"""


class Command(BaseCommand):
    help = SHEET_HELP

    def create_parser(self, prog_name, subcommand, **kwargs):
        from argparse import RawDescriptionHelpFormatter

        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter  # keep the column table's layout
        return parser

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check every row and report what would happen; write nothing",
        )
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
            rows=rows,
            images=bulk.folder_images(images or sheet.parent),
            dry_run=options["dry_run"],
        ).as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report, ensure_ascii=False, indent=2))
        else:
            if options["dry_run"]:
                self.stdout.write("dry run: nothing was written; an import would give")
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
