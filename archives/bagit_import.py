"""Import an Atelier bag: the same records and files (same sha256) in this instance.

The archive goes through ``bagit_validate.bag_opened`` first (safe extraction, BagIt checks,
every checksum), then ``data/atelier.json`` is checked against the payload, and only then is
anything written: stored files, users, records and their links in ONE ``atomic_with_files``
block, so a refusal or failure leaves no row and no file behind.

A bag is hostile until proven otherwise: it may only hold the models its scope exports
(the scope's ``importable``, an explicit allow-list the app owning the scope registers in its
``bag.py``, see ``archives.bag_registry``); a record of any other label, and above all
accounts, groups, permissions, tokens, sessions, admin log entries or content types, refuses the
whole bag before anything is written.

Records get new primary keys (foreign keys are remapped, and each must point at a record of the
model the field expects); records their app registers with a natural key (``reuse_by``: motif
terms by slug, base models by name) are reused when they already exist. Users are never
created from a bag: a person named in it is linked to the account here with the same
username, if there is one; otherwise an optional reference
(``created_by``, ``annotator``, ...) becomes empty and a many-to-many link (panel members) is
dropped, which the import report lists (``BagImport.users_report``); a required one (a
rating's or an assignment's expert) refuses the bag, naming the accounts an administrator
would have to create first. Timestamps (``auto_now``/``auto_now_add``) keep the exported values.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, SuspiciousFileOperation, ValidationError
from django.db import IntegrityError, models
from django.db.models import DateTimeField, UUIDField
from django.utils import timezone

from archives.bag_graph import FILE_LABEL, label_of, user_label
from archives.bag_registry import bag_scopes, record_rules
from archives.bagit_export import FORMAT, FORMAT_VERSION, RECORDS_FILE
from archives.bagit_validate import BagLimits, BagRefused, OpenedBag, bag_opened
from archives.models import BagImport, StoredFile
from archives.services import atomic_with_files, stored_file_save
from jobs.models import Job

# Apps whose rows are never taken from a bag, whatever the scope (named in the refusal).
NEVER_IMPORTED_APPS = frozenset({"auth", "authtoken", "sessions", "admin", "contenttypes"})

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
    scope = document.get("scope") if isinstance(document.get("scope"), dict) else {}
    scopes = bag_scopes()
    known = scopes.get(str(scope.get("kind", "")))
    if known is None:
        raise BagRefused(
            [
                f"data/{RECORDS_FILE} has scope {scope.get('kind')!r}; an import takes "
                f"{', '.join(sorted(scopes))}."
            ]
        )
    allowed = known.importable
    manifest = opened.bag.entries
    files = document.get("files") or {}
    agents = document.get("agents") or {}
    records = document.get("records") or []
    if not (isinstance(files, dict) and isinstance(agents, dict) and isinstance(records, list)):
        raise BagRefused([f"data/{RECORDS_FILE}: files, agents and records have the wrong shape."])
    for key, entry in files.items():
        if not isinstance(entry, dict):
            problems.append(f"{key}: a file entry must be an object.")
            continue
        rel = str(entry.get("path", ""))
        if not rel.startswith("data/") or ".." in rel.split("/") or rel not in manifest:
            problems.append(f"{key}: {rel!r} is not a payload file listed in the manifests.")
            continue
        name = str(entry.get("name", ""))
        if not name or name.startswith("/") or "\\" in name or ".." in name.split("/"):
            problems.append(f"{key}: {name!r} is not a relative storage name.")
            continue
        recorded = manifest[rel].get("sha256")
        if recorded and recorded != entry.get("sha256"):
            problems.append(f"{rel}: sha256 in {RECORDS_FILE} differs from the manifest.")
        elif _sha256(opened.root / rel) != entry.get("sha256"):
            problems.append(f"{rel}: sha256 differs from the one recorded in {RECORDS_FILE}.")
    for key, agent in agents.items():
        if not isinstance(agent, dict) or not str(agent.get("username") or ""):
            problems.append(f"{key}: an agent without a username.")
    seen: set[str] = set()
    for record in records:
        if not isinstance(record, dict):
            problems.append(f"data/{RECORDS_FILE}: every record must be an object.")
            continue
        key, label = str(record.get("key", "")), str(record.get("model", "")).lower()
        problem = _record_problem(key, label, allowed, scope_kind=str(scope["kind"]))
        if problem is None and key in seen:
            problem = f"{key}: appears twice."
        seen.add(key)
        if problem:
            problems.append(problem)
    if problems:
        raise BagRefused(problems)
    return document


def _record_problem(
    key: str, label: str, allowed: frozenset[str], *, scope_kind: str
) -> str | None:
    """Why a record may not be imported, or None; checked before anything is written."""
    if label.partition(".")[0] in NEVER_IMPORTED_APPS or label == user_label():
        return (
            f"{key}: model {label!r} is never imported from a bag (accounts, groups, "
            "permissions, tokens, sessions, the admin log and content types stay with this "
            "instance); the bag was refused and nothing was written."
        )
    if label not in allowed:
        return (
            f"{key}: model {label!r} is not part of a {scope_kind.replace('_', ' ')} bag "
            f"(accepted: {', '.join(sorted(allowed))}); the bag was refused and nothing was "
            "written."
        )
    try:
        apps.get_model(label)
    except (LookupError, ValueError):
        return f"{key}: model {label!r} does not exist here."
    if not key.startswith(label + ":"):
        return f"{key}: a record key must start with its model label {label!r}."
    return None


class _Importer:
    def __init__(self, document: dict[str, Any], root: Path):
        self.document, self.root = document, root
        self.keys: dict[str, Any] = {}  # bag key of a record or file -> new pk
        self.users: dict[str, Any] = {}  # agent key -> pk of the account here with that username
        self.unknown: dict[str, str] = {}  # agent key -> username with no account here
        self.cleared: list[dict[str, str]] = []  # references to unknown people left empty
        self.counts: dict[str, int] = {}

    def refuse(self, key: str, message: str):
        raise BagRefused([f"{key}: {message}"])

    def match_users(self) -> None:
        """Link agents to existing accounts by username; never create one (see module doc)."""
        User = get_user_model()
        for key, agent in (self.document.get("agents") or {}).items():
            username = str(agent["username"])
            user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
            if user is None:
                self.unknown[key] = username
            else:
                self.users[key] = user.pk

    def users_report(self) -> dict[str, Any]:
        User = get_user_model()
        matched = User._default_manager.filter(pk__in=set(self.users.values()))
        return {
            "created": 0,
            "matched": sorted(u.get_username() for u in matched),
            "not_here": sorted(set(self.unknown.values())),
            "cleared": self.cleared,
        }

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

    def _user(self, key: str, f: models.Field, value: Any) -> Any:
        if value in self.users:
            return self.users[value]
        if value not in self.unknown:
            self.refuse(key, f"{f.name} refers to {value!r}, which is not an agent of the bag")
        if not f.null:
            self.refuse(
                key,
                f"{f.name} is {self.unknown[value]!r}, who has no account here, and the "
                f"record needs one; bags never create accounts: an administrator may create "
                f"{self.unknown[value]!r} (inactive is enough) before the import is tried again",
            )
        self.cleared.append({"record": key, "field": f.name, "username": self.unknown[value]})
        return None

    def _value(self, key: str, f: models.Field, value: Any) -> Any:
        if f.is_relation:
            if value is None:
                return None
            target = label_of(f.related_model)
            if target == user_label():
                return self._user(key, f, value)
            if not (isinstance(value, str) and value.startswith(target + ":")):
                self.refuse(key, f"{f.name} must refer to a {target} record, not {value!r}")
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
        rules = record_rules(label)
        reuse = rules.reuse_by
        if reuse and all(name in fields for name in reuse):
            existing = model._default_manager.filter(**{n: fields[n] for n in reuse}).first()
            if existing is not None:
                self.keys[key] = existing.pk
                return
        fields = {**fields, **rules.import_overrides}
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
        if rules.job_outcome:
            job = imported_outcome_job(record.get("outcome"))
            model._default_manager.filter(pk=obj.pk).update(job=job)
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
            if not isinstance(keys, list):
                self.refuse(record["key"], f"{name} must list bag keys")
            target = label_of(f.related_model)
            if target == user_label():
                wanted = []
                for k in keys:
                    if k in self.users:
                        wanted.append(self.users[k])
                    elif k in self.unknown:
                        self.cleared.append(
                            {"record": record["key"], "field": name, "username": self.unknown[k]}
                        )
                    else:
                        self.refuse(
                            record["key"], f"{name} links to {k!r}, not an agent of the bag"
                        )
                getattr(obj, name).add(*wanted)
                continue
            missing = [k for k in keys if not str(k).startswith(target + ":") or k not in self.keys]
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
                importer.match_users()
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
                done.users_report = importer.users_report()
                done.root_key = scope.get("root")
                done.root_pk = importer.keys.get(scope.get("root"))
        except IntegrityError as exc:
            raise BagRefused([f"The records conflict with this instance: {exc}"]) from exc
        except SuspiciousFileOperation as exc:
            raise BagRefused([f"A stored file name in the bag is refused here: {exc}"]) from exc
        except (TypeError, ValueError) as exc:
            raise BagRefused([f"A record holds a value of the wrong type: {exc}"]) from exc
    return done


def imported_outcome_job(outcome: Any) -> Job:
    """A finished job that says how an imported run or request ended where it ran.

    Never a queued or running one: a bag must not start work here. A bag that does not say
    (or says something else) gives a failed job that says so."""
    outcome = outcome if isinstance(outcome, dict) else {}
    status = outcome.get("status")
    error = str(outcome.get("error") or "")[:2000]
    if status not in Job.FINISHED:
        status, error = Job.Status.FAILED, "Imported from a bag that does not say how it ended."
    finished_at = None
    try:
        finished_at = DateTimeField().to_python(outcome.get("finished_at"))
    except ValidationError:
        pass
    return Job.objects.create(
        kind="archives.imported",
        status=status,
        progress=1.0,
        message="Ran elsewhere; imported from a bag.",
        error=error,
        timeout=1,
        max_attempts=0,
        finished_at=finished_at or timezone.now(),
    )
