"""``manage.py export_catalogue OUT.csv|OUT.json [--collection SLUG]`` (the import format)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from heritage import bulk, selectors
from heritage.models import HeritageItem


class Command(BaseCommand):
    help = "Export the catalogue (items, images, annotations) as CSV or JSON."

    def add_arguments(self, parser):
        parser.add_argument("out", type=Path)
        parser.add_argument("--collection", help="only this collection (slug)")

    def handle(self, *args, out: Path, collection: str | None, **options):
        items = HeritageItem.objects.select_related("collection").prefetch_related(
            selectors.image_prefetch()
        )
        if collection:
            items = items.filter(collection__slug=collection)
        rows = bulk.catalogue_export_rows(items)
        suffix = out.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise CommandError("name the output *.csv or *.json")
        text = bulk.rows_to_csv(rows) if suffix == ".csv" else bulk.rows_to_json(rows)
        out.write_text(text, encoding="utf-8")
        self.stdout.write(f"{len(rows)} rows written to {out}")
