"""Import an Atelier bag: the same records and files (same sha256) in this instance.

The archive goes through ``bagit_validate.bag_opened`` first (safe extraction, BagIt checks,
every checksum), then ``data/atelier.json`` is checked against the payload, and only then is
anything written: stored files, users, records and their links in ONE ``atomic_with_files``
block, so a refusal or failure leaves no row and no file behind.

Records get new primary keys (foreign keys are remapped); vocabulary terms (motif terms by
slug), base models (by name) and users (by username) that already exist are reused. Users the
instance does not know are created inactive with no usable password: an administrator decides
who may sign in. Timestamps (``auto_now``/``auto_now_add``) keep the exported values.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import IntegrityError, models
from django.db.models import UUIDField

from archives.bagit_export import FILE_LABEL, FORMAT, FORMAT_VERSION, RECORDS_FILE, user_label
from archives.bagit_validate import BagLimits, BagRefused, OpenedBag, bag_opened
from archives.models import BagImport, StoredFile
from archives.services import atomic_with_files, stored_file_save

# Shared vocabularies and configuration matched by natural key instead of duplicated.
REUSE_BY: dict[str, tuple[str, ...]] = {
    "heritage.motifterm": ("slug",),
    "generation.basemodel": ("name",),
}
# Fields reset on import because they are facts about an instance, not about the record:
# this instance keeps its own default base model.
IMPORT_OVERRIDES: dict[str, dict[str, Any]] = {"generation.basemodel": {"is_default": False}}
CHUNK = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_document(opened: OpenedBag) -> dict[str, Any]:
    """data/atelier.json, checked against the payload; BagRefused with every problem."""
    path = opened.root / "data" / RECORDS_FILE
    if not path.is_file():
        raise BagRefused([f"data/{RECORDS_FILE} is missing: this is not an Atelier bag."])
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BagRefused([f"data/{RECORDS_FILE} is not valid JSON: {exc}"]) from exc
    problems: list[str] = []
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BagRefused([f"data/{RECORDS_FILE} is not an {FORMAT} document."])
    if document.get("format_version") != FORMAT_VERSION:
        raise BagRefused(
            [
                f"{FORMAT} version {document.get('format_version')!r} is not supported "
                f"(supported: {FORMAT_VERSION})."
            ]
        )
    manifest = opened.bag.entries
    for key, entry in (document.get("files") or {}).items():
        rel = str(entry.get("path", ""))
        if not rel.startswith("data/") or ".." in rel.split("/") or rel not in manifest:
            problems.append(f"{key}: {rel!r} is not a payload file listed in the manifests.")
            continue
        recorded = manifest[rel].get("sha256")
        if recorded and recorded != entry.get("sha256"):
            problems.append(f"{rel}: sha256 in {RECORDS_FILE} differs from the manifest.")
        elif _sha256(opened.root / rel) != entry.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the one recorded in {RECORDS_FILE}.")
    for record in document.get("records") or []:
        label = record.get("model", "")
        try:
            apps.get_model(label)
        except (LookupError, ValueError):
            problems.append(f"{record.get('key')}: model {label!r} does not exist here.")
    if problems:
        raise BagRefused(problems)
    return document


class _Importer:
    def __init__(self, document: dict[str, Any], root: Path):
        self.document, self.root = document, root
        self.keys: dict[str, Any] = {}  # bag key -> new pk
        self.counts: dict[str, int] = {}

    def refuse(self, key: str, message: str):
        raise BagRefused([f"{key}: {message}"])

    def users(self) -> None:
        User = get_user_model()
        for key, agent in (self.document.get("agents") or {}).items():
            username = agent.get("username") or ""
            if not username:
                self.refuse(key, "an agent without a username")
            user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                user = User(
                    **{User.USERNAME_FIELD: username},
                    first_name=agent.get("first_name", ""),
                    last_name=agent.get("last_name", ""),
                    is_active=False,
                )
                user.set_unusable_password()
                user.save()
                self.counts[user_label()] = self.counts.get(user_label(), 0) + 1
            self.keys[key] = user.pk

    def files(self) -> None:
        for key, entry in (self.document.get("files") or {}).items():
            with open(self.root / entry["path"], "rb") as handle:
                stored = stored_file_save(
                    name=entry["name"], content=handle, content_type=entry.get("content_type", "")
                )
            if stored.sha256 != entry["sha256"]:
                self.refuse(key, "the stored copy does not have the recorded sha256")
            created = StoredFile._meta.get_field("created_at").to_python(entry.get("created_at"))
            if created:
                StoredFile.objects.filter(pk=stored.pk).update(created_at=created)
            self.keys[key] = stored.pk
            self.counts[FILE_LABEL] = self.counts.get(FILE_LABEL, 0) + 1

    def _value(self, key: str, f: models.Field, value: Any) -> Any:
        if f.is_relation:
            if value is None:
                return None
            if value not in self.keys:
                self.refuse(key, f"{f.name} refers to {value}, which is not in the bag before it")
            return self.keys[value]
        try:
            return f.to_python(value)
        except ValidationError as exc:
            self.refuse(key, f"{f.name}: {'; '.join(exc.messages)}")

    def record(self, record: dict[str, Any]) -> None:
        key, label = record["key"], record["model"]
        model = apps.get_model(label)
        fields = record.get("fields") or {}
        reuse = REUSE_BY.get(label)
        if reuse and all(name in fields for name in reuse):
            existing = model._default_manager.filter(**{n: fields[n] for n in reuse}).first()
            if existing is not None:
                self.keys[key] = existing.pk
                return
        fields = {**fields, **IMPORT_OVERRIDES.get(label, {})}
        obj = model()
        auto_times: dict[str, Any] = {}
        for f in model._meta.concrete_fields:
            if f.name not in fields:
                continue
            if f.primary_key and not f.is_relation:
                if isinstance(f, UUIDField):
                    wanted = f.to_python(fields[f.name])
                    taken = model._default_manager.filter(pk=wanted).exists()
                    setattr(obj, f.attname, uuid.uuid4() if taken else wanted)
                elif not isinstance(f, models.AutoField | models.BigAutoField):
                    setattr(obj, f.attname, f.to_python(fields[f.name]))
                continue
            value = self._value(key, f, fields[f.name])
            setattr(obj, f.attname, value)
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                auto_times[f.attname] = value
        try:
            obj.full_clean()
            obj.save(force_insert=True)
        except ValidationError as exc:
            messages = (
                [f"{name}: {'; '.join(errs)}" for name, errs in exc.message_dict.items()]
                if hasattr(exc, "error_dict")
                else exc.messages
            )
            self.refuse(key, "; ".join(messages))
        if auto_times:
            model._default_manager.filter(pk=obj.pk).update(**auto_times)
        self.keys[key] = obj.pk
        self.counts[label] = self.counts.get(label, 0) + 1

    def links(self, record: dict[str, Any]) -> None:
        model = apps.get_model(record["model"])
        if record["key"] not in self.keys:
            return
        obj = model._default_manager.get(pk=self.keys[record["key"]])
        for name, keys in (record.get("m2m") or {}).items():
            try:
                f = model._meta.get_field(name)
            except FieldDoesNotExist:
                self.refuse(record["key"], f"no many-to-many field {name!r} here")
            if not f.many_to_many:
                self.refuse(record["key"], f"{name} is not a many-to-many field")
            missing = [k for k in keys if k not in self.keys]
            if missing:
                self.refuse(record["key"], f"{name} links to {missing}, which are not in the bag")
            getattr(obj, name).add(*[self.keys[k] for k in keys])


def bag_import(*, path: Path | str, user=None, limits: BagLimits | None = None) -> BagImport:
    """Validate and import the archived bag at ``path``; BagRefused lists what is wrong."""
    with bag_opened(path, limits) as opened:
        document = read_document(opened)
        importer = _Importer(document, opened.root)
        try:
            with atomic_with_files():
                importer.users()
                importer.files()
                records = document.get("records") or []
                for record in records:
                    importer.record(record)
                for record in records:
                    importer.links(record)
                scope = document.get("scope") or {}
                done = BagImport(
                    bag_name=opened.name,
                    external_identifier=opened.info.get("External-Identifier", ""),
                    source_organisation=opened.info.get("Source-Organization", ""),
                    scope=str(scope.get("kind", ""))[:20],
                    records=importer.counts,
                    files=importer.counts.get(FILE_LABEL, 0),
                    created_by=user if getattr(user, "is_authenticated", False) else None,
                )
                done.full_clean()
                done.save()
                done.root_key = scope.get("root")
                done.root_pk = importer.keys.get(scope.get("root"))
        except IntegrityError as exc:
            raise BagRefused([f"The records conflict with this instance: {exc}"]) from exc
    return done
