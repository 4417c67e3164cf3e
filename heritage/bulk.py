"""Bulk import (a sheet + image files) and export of the catalogue, as CSV or JSON.

A sheet row describes one item and, optionally, one image and one annotation of it::

    accession_number, collection, title_en, title_zh, title_ug, description_en, description_zh,
    description_ug, period, place, provenance, rights, credit_line_en, published, image,
    category, motifs (";"-separated slugs), meaning_en, meaning_zh, meaning_ug,
    region ("x,y,w,h")

Each row runs in its own transaction: a bad row is rejected with its reason and leaves nothing,
good rows go in. Re-running the same sheet changes nothing (idempotent): items are matched by
accession number, images by checksum, annotations by image + category + motifs.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from archives.services import atomic_with_files
from heritage import services
from heritage.models import Collection, HeritageItem, MotifTerm, SemioticAnnotation

LANGS = ("en", "zh", "ug")
COLUMNS = [
    "accession_number",
    "collection",
    *(f"title_{lang}" for lang in LANGS),
    *(f"description_{lang}" for lang in LANGS),
    "period",
    "place",
    "provenance",
    "rights",
    *(f"credit_line_{lang}" for lang in LANGS),
    "published",
    "image",
    "category",
    "motifs",
    *(f"meaning_{lang}" for lang in LANGS),
    "region",
]
TRUE = {"1", "true", "yes", "y", "on"}
FALSE = {"", "0", "false", "no", "n", "off"}


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    images_added: int = 0
    annotations_added: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)
    # One entry per row: {"row", "accession_number", "outcome", "reason"}, outcome one of
    # created / updated / unchanged / refused (what a dry run shows before anything is written).
    rows: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "images_added": self.images_added,
            "annotations_added": self.annotations_added,
            "rejected": self.rejected,
        }


class RowRejected(Exception):
    pass


def parse_sheet(content: bytes | str, *, file_format: str) -> list[dict[str, Any]]:
    """Rows of a CSV (header line) or JSON (a list of objects, or {"items": [...]}) sheet."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content
    if file_format == "csv":
        return [dict(row) for row in csv.DictReader(io.StringIO(text))]
    if file_format == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"The JSON sheet is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            data = data.get("items")
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValidationError('A JSON sheet is a list of objects (or {"items": [...]}).')
        return data
    raise ValidationError(f"Unknown sheet format {file_format!r}; use csv or json.")


def folder_images(folder: str | Path) -> Callable[[str], bytes | None]:
    """Image lookup in a folder; names may not leave it (no ``..`` or absolute paths)."""
    root = Path(folder).resolve()

    def lookup(name: str) -> bytes | None:
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            return None
        return path.read_bytes()

    return lookup


def _langmap(row: dict[str, Any], name: str) -> dict[str, str] | None:
    if isinstance(row.get(name), dict):
        return {k: str(v) for k, v in row[name].items() if v}
    values = {lang: str(row.get(f"{name}_{lang}") or "").strip() for lang in LANGS}
    values = {lang: text for lang, text in values.items() if text}
    return values or None


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value if value is not None else "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise RowRejected(f"published must be true or false, not {value!r}")


def _region(value: Any) -> tuple[int, int, int, int] | None:
    if value in (None, ""):
        return None
    parts = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    try:
        x, y, w, h = (int(p) for p in parts)
    except (TypeError, ValueError):
        raise RowRejected(f'region must be "x,y,w,h" in pixels, not {value!r}') from None
    return (x, y, w, h)


def _motifs(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value or "").split(";") if part.strip()]


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
    return " ".join(exc.messages)


def _import_row(
    row: dict[str, Any], images: Callable[[str], bytes | None], report: ImportReport, user
) -> None:
    accession = str(row.get("accession_number") or "").strip()
    if not accession:
        raise RowRejected("accession_number is missing")
    slug = str(row.get("collection") or "").strip()
    collection = Collection.objects.filter(slug=slug).first()
    if collection is None:
        raise RowRejected(f"unknown collection {slug!r}")
    fields: dict[str, Any] = {}
    for name in ("title", "description", "credit_line"):
        value = _langmap(row, name)
        if value is not None:
            fields[name] = value
    for name in ("period", "place", "provenance", "rights"):
        if row.get(name) not in (None, ""):
            fields[name] = str(row[name]).strip()
    if "published" in row:
        fields["published"] = _bool(row["published"])
    if "title" not in fields:
        fields["title"] = {"en": accession}
    category = str(row.get("category") or "").strip()
    if category and category not in SemioticAnnotation.Category.values:
        raise RowRejected(
            f"unknown category {category!r}; use one of {SemioticAnnotation.Category.values}"
        )
    motif_slugs = _motifs(row.get("motifs"))
    terms = list(MotifTerm.objects.filter(slug__in=motif_slugs))
    missing = sorted(set(motif_slugs) - {t.slug for t in terms})
    if missing:
        raise RowRejected(f"unknown motif terms {missing} (add them to the vocabulary first)")
    region = _region(row.get("region"))
    image_name = str(row.get("image") or "").strip()
    data = None
    if image_name:
        data = images(image_name)
        if data is None:
            raise RowRejected(f"image file {image_name!r} was not found")
    elif category:
        raise RowRejected("an annotation (category) needs an image on the same row")

    item = HeritageItem.objects.filter(accession_number=accession).first()
    if item is None:
        item = services.item_create(collection=collection, accession_number=accession, **fields)
        report.created += 1
    else:
        changed = item.collection_id != collection.pk or any(
            getattr(item, name) != value for name, value in fields.items()
        )
        if changed:
            services.item_update(item=item, collection=collection, **fields)
            report.updated += 1
        else:
            report.unchanged += 1
    if data is None:
        return
    digest = hashlib.sha256(data).hexdigest()
    image = item.images.filter(original__sha256=digest).first()
    if image is None:
        try:
            image = services.item_image_create(
                item=item, content=data, filename=Path(image_name).name, user=user
            )
        except ValidationError as exc:
            raise RowRejected(f"image {image_name!r}: {_messages(exc)}") from None
        report.images_added += 1
    if category:
        wanted = sorted(t.pk for t in terms)
        for existing in image.annotations.filter(category=category).prefetch_related("motifs"):
            if sorted(m.pk for m in existing.motifs.all()) == wanted:
                return
        services.annotation_create(
            image=image,
            category=category,
            motifs=terms,
            region=region,
            meaning=_langmap(row, "meaning") or {},
            annotator=user,
        )
        report.annotations_added += 1


class _DryRun(Exception):
    """Raised at the end of a dry run to roll back everything it wrote (files included)."""


COUNTERS = ("created", "updated", "unchanged", "images_added", "annotations_added")


def catalogue_import(
    *,
    rows: Iterable[dict[str, Any]],
    images: Callable[[str], bytes | None],
    user=None,
    dry_run: bool = False,
) -> ImportReport:
    """Import rows one transaction each; return counts and every rejected row with its reason.

    Row numbers count data rows from 1 (the CSV header is not a row). ``dry_run`` runs the
    very same checks and writes inside one transaction that is then rolled back (stored files
    deleted, no job queued): the report says what an import would create, update and refuse.
    """
    report = ImportReport()
    # A real import commits row by row (a bad row never holds back the good ones).
    outer = atomic_with_files() if dry_run else contextlib.nullcontext()
    try:
        with outer:
            for number, row in enumerate(rows, start=1):
                before = report.as_dict()
                accession = str(row.get("accession_number") or "")
                try:
                    with atomic_with_files():
                        _import_row(row, images, report, user)
                except (RowRejected, ValidationError) as exc:
                    # Roll the counters back too: the row left nothing behind.
                    for key in COUNTERS:
                        setattr(report, key, before[key])
                    reason = _messages(exc) if isinstance(exc, ValidationError) else str(exc)
                    report.rejected.append(
                        {"row": number, "accession_number": accession, "reason": reason}
                    )
                    outcome = "refused"
                else:
                    reason = ""
                    outcome = next(
                        k
                        for k in ("created", "updated", "unchanged")
                        if getattr(report, k) > before[k]
                    )
                report.rows.append(
                    {
                        "row": number,
                        "accession_number": accession,
                        "outcome": outcome,
                        "reason": reason,
                    }
                )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def catalogue_export_rows(items: Iterable[HeritageItem]) -> list[dict[str, Any]]:
    """One row per annotation (or per image, or per item): the import format, round-trippable."""
    rows = []
    for item in items:
        base: dict[str, Any] = {
            "accession_number": item.accession_number,
            "collection": item.collection.slug,
            "period": item.period,
            "place": item.place,
            "provenance": item.provenance,
            "rights": item.rights,
            "published": "true" if item.published else "false",
        }
        for name in ("title", "description", "credit_line"):
            for lang in LANGS:
                base[f"{name}_{lang}"] = getattr(item, name).get(lang, "")
        images = list(item.images.all())
        if not images:
            rows.append(_complete(base))
        for image in images:
            with_image = {**base, "image": image.original_filename}
            annotations = list(image.annotations.all())
            if not annotations:
                rows.append(_complete(with_image))
            for annotation in annotations:
                row = {
                    **with_image,
                    "category": annotation.category,
                    "motifs": ";".join(m.slug for m in annotation.motifs.all()),
                    "region": ",".join(str(v) for v in annotation.region)
                    if annotation.region
                    else "",
                }
                for lang in LANGS:
                    row[f"meaning_{lang}"] = annotation.meaning.get(lang, "")
                rows.append(_complete(row))
    return rows


def _complete(row: dict[str, Any]) -> dict[str, Any]:
    return {column: row.get(column, "") for column in COLUMNS}


def rows_to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def rows_to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"items": rows}, ensure_ascii=False, indent=2)
