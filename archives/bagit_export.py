"""Export a collection, a training run or a study as a BagIt bag.

What goes in is the closure of a root record: the records reached by following the reverse
relations of its scope (a collection's items, their images and annotations; a run's dataset
examples, generation requests and images; a study's items, ratings and metrics) and then every
forward foreign key, so each record's references are in the bag too. The apps register the
scopes, their relations and the readable extras of their records in their own ``bag.py``
(``archives.bag_registry``); this module knows none of them. Users become agents (username
and name), stored files become payload files, and jobs stay behind (their dates and outcome go
to provenance.json).

The payload (``data/``) holds:

* ``atelier.json``: every record with its fields, foreign keys as bag-local keys
  (``"heritage.itemimage:12"``), in an order where each record comes after what it refers to:
  what ``bagit_import`` reads to rebuild the same records in another instance;
* ``files/<storage name>``: every stored file, byte for byte (sha256 checked while copied);
* ``provenance.json``: PREMIS objects, events and agents (``archives.provenance``);
* readable extras written by the apps' registered functions: dataset captions and annotations
  (``metadata.jsonl``), a run's settings and loss log, generation parameters, ratings and
  metric results as CSV, a study report.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bagit
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

from archives.bag_graph import (
    FILE_LABEL,
    FILES_DIR,
    RecordGraph,
    collect,
    dumps,
    encode_value,
    file_payload_path,
    forward_fks,
    key_of,
    label_of,
    model_or_none,
    serialise_record,
    sort_key,
    user_label,
)
from archives.bag_registry import BagScope, bag_scope, bag_scopes, not_exported, readables
from archives.provenance import provenance_document
from core.errors import Refused

FORMAT = "atelier-bag"
FORMAT_VERSION = 1
RECORDS_FILE = "atelier.json"
CHUNK = 1024 * 1024
# bagit logs every file it hashes at INFO: far too chatty for a worker log.
logging.getLogger("bagit").setLevel(logging.WARNING)

Progress = Callable[[float, str], None]


class ExportError(Exception):
    """The export cannot be made (a stored file is missing or changed, a bad reference)."""


def _record_dependencies(obj: models.Model) -> list[str]:
    deps = []
    skipped = not_exported() | {user_label(), FILE_LABEL}
    for fk in forward_fks(type(obj)):
        target_pk = getattr(obj, fk.attname)
        target_label = label_of(fk.related_model)
        if target_pk is None or target_label in skipped:
            continue
        deps.append(key_of(target_label, target_pk))
    return deps


def ordered_keys(graph: RecordGraph) -> list[str]:
    """Record keys so that every record follows the records its foreign keys point to."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(key: str) -> None:
        stack = [(key, iter(_record_dependencies(graph.records[key])))]
        state[key] = 1
        while stack:
            current, deps = stack[-1]
            for dep in deps:
                if dep in graph.records and state.get(dep) is None:
                    state[dep] = 1
                    stack.append((dep, iter(_record_dependencies(graph.records[dep]))))
                    break
            else:
                stack.pop()
                state[current] = 2
                order.append(current)

    for key in sorted(graph.records, key=sort_key):
        if state.get(key) is None:
            visit(key)
    return order


def serialise_graph(graph: RecordGraph) -> dict[str, Any]:
    """The document written to data/atelier.json."""
    users = {
        key: {
            "username": user.get_username(),
            "first_name": getattr(user, "first_name", ""),
            "last_name": getattr(user, "last_name", ""),
        }
        for key, user in sorted(graph.users.items(), key=lambda kv: sort_key(kv[0]))
    }
    files = {
        key: {
            "path": file_payload_path(stored),
            "name": stored.name,
            "sha256": stored.sha256,
            "size": stored.size,
            "content_type": stored.content_type,
            "created_at": encode_value(stored.created_at),
        }
        for key, stored in sorted(graph.files.items(), key=lambda kv: sort_key(kv[0]))
    }
    root_key = key_of(label_of(graph.root), graph.root.pk)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scope": {"kind": graph.scope.kind, "root": root_key, "title": str(graph.root)},
        "agents": users,
        "files": files,
        "records": [serialise_record(graph.records[key], graph) for key in ordered_keys(graph)],
    }


# --- readable extras ---------------------------------------------------------------------------


def readable_extras(graph: RecordGraph) -> dict[str, str]:
    """Payload-relative path -> text of the human-readable files the apps write for this bag."""
    out: dict[str, str] = {}
    for write in readables():
        out.update(write(graph))
    return out


# --- the bag -----------------------------------------------------------------------------------


def copy_stored_file(stored, target: Path) -> None:
    """Copy one stored file out of the storage, checking its sha256 on the way."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source = default_storage.open(stored.name, "rb")
    except (FileNotFoundError, OSError) as exc:
        raise ExportError(f"stored file {stored.name} is missing from the storage") from exc
    with source, open(target, "wb") as out:
        for chunk in iter(lambda: source.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != stored.sha256:
        raise ExportError(
            f"stored file {stored.name} has changed since it was written "
            f"(recorded sha256 {stored.sha256}, now {digest.hexdigest()}): run a fixity check"
        )


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


@dataclass
class BuiltBag:
    folder: Path
    name: str
    payload_files: int
    payload_bytes: int


def bag_build(
    *,
    scope: BagScope,
    root: models.Model,
    workdir: Path,
    bag_name: str,
    external_identifier: str,
    agent=None,
    progress: Progress | None = None,
) -> BuiltBag:
    """Write the bag for ``root`` under ``workdir/bag_name`` and return it."""
    report = progress or (lambda fraction, message: None)
    graph = collect(scope, root)
    report(0.05, f"collected {len(graph.records)} records and {len(graph.files)} files")
    folder = workdir / bag_name
    folder.mkdir(parents=True)
    total = max(len(graph.files), 1)
    for index, stored in enumerate(graph.files.values(), start=1):
        copy_stored_file(stored, folder / FILES_DIR / stored.name)
        if index % 20 == 0 or index == total:
            report(0.05 + 0.6 * index / total, f"copied {index} of {len(graph.files)} files")
    document = serialise_graph(graph)
    # Key order of JSON values is kept as stored, so the records come back exactly.
    (folder / RECORDS_FILE).write_text(dumps(document, sort_keys=False), encoding="utf-8")
    for relative, text in readable_extras(graph).items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    exported_at = timezone.now()
    provenance = provenance_document(
        graph=graph,
        external_identifier=external_identifier,
        exported_at=exported_at,
        exporter=agent,
    )
    (folder / "provenance.json").write_text(dumps(provenance), encoding="utf-8")
    payload = [p for p in folder.rglob("*") if p.is_file()]
    payload_bytes = sum(p.stat().st_size for p in payload)
    report(0.7, "writing manifests")
    bag_info = {
        "Source-Organization": settings.ATELIER_ORGANISATION,
        "Contact-Email": settings.ATELIER_CONTACT_EMAIL,
        "External-Identifier": external_identifier,
        "External-Description": f"Atelier {scope.kind.replace('_', ' ')}: {root}",
        "Bag-Size": human_size(payload_bytes),
        "Bag-Group-Identifier": key_of(label_of(root), root.pk),
        "Atelier-Format": f"{FORMAT}/{FORMAT_VERSION}",
    }
    # make_bag moves everything into data/ and adds Bagging-Date and Payload-Oxum.
    bagit.make_bag(str(folder), bag_info=bag_info, checksums=["sha256", "sha512"], processes=1)
    return BuiltBag(
        folder=folder, name=bag_name, payload_files=len(payload), payload_bytes=payload_bytes
    )


def _tar_filter(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def archive_folder(folder: Path, archive_format: str, target: Path) -> Path:
    """Pack the bag folder (with its name as the top folder) as .tar or .zip."""
    files: Iterable[Path] = sorted(p for p in folder.rglob("*") if p.is_file())
    if archive_format == "tar":
        with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
            for path in files:
                archive.add(
                    path,
                    arcname=f"{folder.name}/{path.relative_to(folder).as_posix()}",
                    filter=_tar_filter,
                )
    elif archive_format == "zip":
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, arcname=f"{folder.name}/{path.relative_to(folder).as_posix()}")
    else:
        raise ExportError(f"unknown archive format {archive_format!r}; use tar or zip")
    return target


def scope_root(scope: str, target_id: Any) -> tuple[BagScope, models.Model]:
    """The scope and root record of an export; Refused when either does not exist."""
    try:
        spec = bag_scope(scope)
    except KeyError:
        raise Refused(
            f"unknown scope {scope!r}; use one of {', '.join(bag_scopes())}", code="scope"
        ) from None
    model = model_or_none(spec.root)
    if model is None:
        raise Refused(f"{spec.root} is not installed in this instance", code="scope")
    by_key = spec.natural_key and not str(target_id).isdigit()
    lookup = {spec.natural_key: target_id} if by_key else {"pk": target_id}
    try:
        root = model._default_manager.get(**lookup)
    except (model.DoesNotExist, ValueError, TypeError):  # ValueError, TypeError: a bad pk
        raise Refused(f"no {scope.replace('_', ' ')} {target_id!r}", code="target") from None
    return spec, root


def bag_export_file(
    *,
    scope: str,
    target_id: Any,
    archive_format: str,
    target: Path,
    external_identifier: str | None = None,
    agent=None,
    progress: Progress | None = None,
) -> BuiltBag:
    """Build the bag and pack it to ``target`` (used by the job and the command)."""
    spec, root = scope_root(scope, target_id)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
    bag_name = f"atelier-{scope.replace('_', '-')}-{slugify(str(root))[:60] or root.pk}-{stamp}"
    workdir = Path(tempfile.mkdtemp(prefix="atelier-export-"))
    try:
        built = bag_build(
            scope=spec,
            root=root,
            workdir=workdir,
            bag_name=bag_name,
            external_identifier=external_identifier or f"urn:uuid:{uuid.uuid4()}",
            agent=agent,
            progress=progress,
        )
        if progress:
            progress(0.85, f"packing {archive_format}")
        archive_folder(built.folder, archive_format, target)
        return built
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def bag_export_enqueue(*, scope: str, target_id: Any, archive_format: str = "tar", user=None):
    """Record a BagExport and queue the ``archives.bag_export`` job that builds it."""
    from django.db import transaction

    from archives.models import BagExport
    from jobs.queue import job_enqueue

    if archive_format not in BagExport.Format.values:
        raise Refused(f"unknown archive format {archive_format!r}; use tar or zip", code="format")
    _, root = scope_root(scope, target_id)
    with transaction.atomic():
        export = BagExport(
            scope=scope,
            target_id=str(root.pk),
            target_label=str(root)[:300],
            archive_format=archive_format,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        export.full_clean()
        export.save()
        export.job = job_enqueue(
            kind="archives.bag_export", params={"export_id": str(export.pk)}, user=user
        )
        export.save(update_fields=["job"])
    return export


def bag_export_archive_store(
    *, export, archive: Path, bag_name: str, payload_files: int, payload_bytes: int
):
    """Store the packed bag of ``export`` (its job built it) and record what it holds."""
    from archives.models import BagExport
    from archives.services import atomic_with_files, stored_file_save

    tar = export.archive_format == BagExport.Format.TAR
    with atomic_with_files(), open(archive, "rb") as handle:
        stored = stored_file_save(
            name=f"archives/bags/{bag_name}{archive.suffix}",
            content=handle,
            content_type="application/x-tar" if tar else "application/zip",
        )
        BagExport.objects.filter(pk=export.pk).update(
            archive=stored,
            bag_name=bag_name,
            payload_files=payload_files,
            payload_bytes=payload_bytes,
        )
    return stored
