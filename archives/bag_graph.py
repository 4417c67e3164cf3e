"""The records of one bag: gathered by following a scope's relations, keyed ``label:pk``.

What the export, the provenance and the apps' ``bag.py`` share: record keys, JSON-safe values,
the closure of a root record (``collect``), records as bag documents, and small helpers for the
readable extras the apps write (CSV, JSON).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from archives.bag_registry import BagScope, not_exported, record_rules, vocabularies

FILES_DIR = "files"
FILE_LABEL = "archives.storedfile"


def user_label() -> str:
    return settings.AUTH_USER_MODEL.lower()


def label_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def key_of(label: str, pk: Any) -> str:
    return f"{label}:{pk}"


def sort_key(key: str) -> tuple[str, int | str]:
    label, _, pk = key.rpartition(":")
    return (label, int(pk) if pk.isdigit() else pk)


def encode_value(value: Any) -> Any:
    """A JSON-safe value that ``field.to_python`` turns back into the same Python value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def model_or_none(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def forward_fks(model: type[models.Model]) -> list[models.ForeignKey]:
    return [f for f in model._meta.concrete_fields if f.is_relation and f.related_model]


def m2m_fields(model: type[models.Model]) -> list[models.ManyToManyField]:
    return [
        f
        for f in model._meta.many_to_many
        if f.remote_field.through._meta.auto_created  # explicit through models are records
    ]


def file_payload_path(stored) -> str:
    return f"data/{FILES_DIR}/{stored.name}"


@dataclass
class RecordGraph:
    """The records of one export, keyed ``label:pk``."""

    scope: BagScope
    root: models.Model
    records: dict[str, models.Model] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)

    def of(self, label: str) -> list[models.Model]:
        return [obj for key, obj in self.records.items() if key.startswith(label + ":")]

    def has(self, label: str, pk: Any) -> bool:
        return key_of(label, pk) in self.records


def collect(scope: BagScope, root: models.Model) -> RecordGraph:
    """The closure of ``root`` under the scope's relations and all forward references."""
    graph = RecordGraph(scope=scope, root=root)
    reverse: dict[str, list[tuple[type[models.Model], str]]] = {}
    for relation in scope.relations:
        child_model = model_or_none(relation.child)
        if child_model is None:
            continue
        try:
            child_model._meta.get_field(relation.field)
        except FieldDoesNotExist:
            continue  # that model has no such field (yet): skip the rule
        reverse.setdefault(relation.parent, []).append((child_model, relation.field))
    users, files, skipped, pulled = user_label(), FILE_LABEL, not_exported(), vocabularies()
    pending = [root]
    while pending:
        obj = pending.pop()
        label = label_of(obj)
        key = key_of(label, obj.pk)
        if key in graph.records:
            continue
        graph.records[key] = obj
        for fk in forward_fks(type(obj)):
            target_pk = getattr(obj, fk.attname)
            if target_pk is None:
                continue
            target_label = label_of(fk.related_model)
            if target_label in skipped:
                continue
            target = getattr(obj, fk.name)
            if target_label == users:
                graph.users[key_of(users, target.pk)] = target
            elif target_label == files:
                graph.files[key_of(files, target.pk)] = target
            else:
                pending.append(target)
        for m2m in m2m_fields(type(obj)):
            target_label = label_of(m2m.related_model)
            if target_label == users:
                for user in getattr(obj, m2m.name).all():
                    graph.users[key_of(users, user.pk)] = user
            elif target_label in pulled:
                pending.extend(getattr(obj, m2m.name).all())
        for child_model, field_name in reverse.get(label, []):
            pending.extend(child_model._default_manager.filter(**{field_name: obj}))
    return graph


def serialise_record(obj: models.Model, graph: RecordGraph) -> dict[str, Any]:
    """One record as written to data/atelier.json: fields, foreign keys as bag keys, links."""
    model = type(obj)
    label = label_of(obj)
    skipped = not_exported()
    fields: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.primary_key and not f.is_relation:
            fields[f.name] = encode_value(f.value_from_object(obj))
            continue
        if f.is_relation:
            target_pk = getattr(obj, f.attname)
            target_label = label_of(f.related_model)
            if target_pk is None or target_label in skipped:
                fields[f.name] = None
            else:
                fields[f.name] = key_of(target_label, target_pk)
            continue
        fields[f.name] = encode_value(f.value_from_object(obj))
    m2m: dict[str, list[str]] = {}
    for f in m2m_fields(model):
        target_label = label_of(f.related_model)
        pks = getattr(obj, f.name).values_list("pk", flat=True)
        keys = [key_of(target_label, pk) for pk in pks]
        if target_label != user_label():
            keys = [k for k in keys if k in graph.records]
        m2m[f.name] = sorted(keys, key=sort_key)
    record = {"key": key_of(label, obj.pk), "model": label, "fields": fields, "m2m": m2m}
    if record_rules(label).job_outcome and getattr(obj, "job_id", None):
        job = obj.job
        record["outcome"] = {
            "status": job.status,
            "finished_at": encode_value(job.finished_at),
            "error": job.error.split("\n\n", 1)[0],  # the message, not the traceback
        }
    return record


# --- helpers for the readable extras of the apps' bag.py ---------------------------------------


def csv_text(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                c: json.dumps(v) if isinstance(v, dict | list) else encode_value(v)
                for c, v in row.items()
            }
        )
    return out.getvalue()


def dumps(value: Any, sort_keys: bool = True) -> str:
    return json.dumps(
        value, indent=2, ensure_ascii=False, default=encode_value, sort_keys=sort_keys
    )


def readable_row(obj: models.Model, graph: RecordGraph) -> dict[str, Any]:
    """A record's fields for a CSV row, stored files named by their path in the bag."""
    row = serialise_record(obj, graph)["fields"]
    for f in forward_fks(type(obj)):
        if label_of(f.related_model) == FILE_LABEL and getattr(obj, f.attname):
            row[f.name] = file_payload_path(getattr(obj, f.name))[len("data/") :]
    return row
