"""Export a collection, a training run or a study as a BagIt bag.

What goes in is the closure of a root record: the records reached by following reverse
relations listed per scope (a collection's items, their images and annotations; a run's
dataset examples, generation requests and images; a study's items, ratings and metrics) and
then every forward foreign key, so each record's references are in the bag too. Users become
agents (username and name), stored files become payload files, and jobs stay behind (their
dates and outcome go to provenance.json).

The payload (``data/``) holds:

* ``atelier.json``: every record with its fields, foreign keys as bag-local keys
  (``"heritage.itemimage:12"``), in an order where each record comes after what it refers to:
  what ``bagit_import`` reads to rebuild the same records in another instance;
* ``files/<storage name>``: every stored file, byte for byte (sha256 checked while copied);
* ``provenance.json``: PREMIS objects, events and agents (``archives.provenance``);
* readable extras: dataset captions and annotations (``metadata.jsonl``), a run's settings
  and loss log, generation parameters, ratings and metric results as CSV, a study report.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import decimal
import hashlib
import io
import json
import logging
import shutil
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bagit
from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone
from django.utils.text import slugify

FORMAT = "atelier-bag"
FORMAT_VERSION = 1
RECORDS_FILE = "atelier.json"
FILES_DIR = "files"
FILE_LABEL = "archives.storedfile"
# Operational rows: a reference to them is exported as null (nullable FKs only).
NOT_EXPORTED = frozenset({"archives.job", "archives.bagexport", "archives.bagimport"})
CHUNK = 1024 * 1024
# bagit logs every file it hashes at INFO: far too chatty for a worker log.
logging.getLogger("bagit").setLevel(logging.WARNING)

Progress = Callable[[float, str], None]


def user_label() -> str:
    return settings.AUTH_USER_MODEL.lower()


class ExportError(Exception):
    """The export cannot be made (a stored file is missing or changed, a bad reference)."""


@dataclass(frozen=True)
class ScopeSpec:
    """What a scope exports: the root model and the reverse relations followed from it.

    ``reverse`` holds (parent model, child model, child field): every child whose field points
    at a parent in the bag joins the bag. ``pull_m2m`` are many-to-many targets that join the
    bag (vocabularies); links to other targets are kept only when those are in the bag anyway.
    """

    kind: str
    root: str
    reverse: tuple[tuple[str, str, str], ...]
    pull_m2m: frozenset[str] = frozenset({"heritage.motifterm"})


_IMAGE_ANNOTATIONS = ("heritage.itemimage", "heritage.semioticannotation", "image")
_DATASET_EXAMPLES = ("heritage.trainingdataset", "heritage.trainingexample", "dataset")
_REQUEST_IMAGES = ("generation.generationrequest", "generation.generatedimage", "request")

SCOPES: dict[str, ScopeSpec] = {
    "collection": ScopeSpec(
        kind="collection",
        root="heritage.collection",
        reverse=(
            ("heritage.collection", "heritage.heritageitem", "collection"),
            ("heritage.heritageitem", "heritage.itemimage", "item"),
            _IMAGE_ANNOTATIONS,
            ("heritage.heritageitem", "heritage.gazetteerpassage", "items"),
        ),
    ),
    "training_run": ScopeSpec(
        kind="training_run",
        root="generation.trainingrun",
        reverse=(
            _DATASET_EXAMPLES,
            _IMAGE_ANNOTATIONS,
            ("generation.trainingrun", "generation.validationimage", "run"),
            ("generation.trainingrun", "generation.generationrequest", "training_run"),
            _REQUEST_IMAGES,
        ),
    ),
    "study": ScopeSpec(
        kind="study",
        root="evaluation.study",
        reverse=(
            ("evaluation.study", "evaluation.studyitem", "study"),
            ("evaluation.study", "evaluation.assignment", "study"),
            ("evaluation.study", "evaluation.rating", "study"),
            ("evaluation.study", "evaluation.metricresult", "study"),
            ("generation.generatedimage", "evaluation.memorisationcheck", "generated"),
            _IMAGE_ANNOTATIONS,
        ),
    ),
}


def label_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def key_of(label: str, pk: Any) -> str:
    return f"{label}:{pk}"


def encode_value(value: Any) -> Any:
    """A JSON-safe value that ``field.to_python`` turns back into the same Python value."""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    return value


def _model_or_none(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        return None


def _forward_fks(model: type[models.Model]) -> list[models.ForeignKey]:
    return [f for f in model._meta.concrete_fields if f.is_relation and f.related_model]


def _m2ms(model: type[models.Model]) -> list[models.ManyToManyField]:
    return [
        f
        for f in model._meta.many_to_many
        if f.remote_field.through._meta.auto_created  # explicit through models are records
    ]


@dataclass
class RecordGraph:
    """The records of one export, keyed ``label:pk``, in dependency order after ``ordered()``."""

    spec: ScopeSpec
    root: models.Model
    records: dict[str, models.Model] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)

    def of(self, label: str) -> list[models.Model]:
        return [obj for key, obj in self.records.items() if key.startswith(label + ":")]

    def has(self, label: str, pk: Any) -> bool:
        return key_of(label, pk) in self.records


def collect(spec: ScopeSpec, root: models.Model) -> RecordGraph:
    """The closure of ``root`` under the scope's reverse rules and all forward references."""
    graph = RecordGraph(spec=spec, root=root)
    reverse: dict[str, list[tuple[type[models.Model], str]]] = {}
    for parent, child, field_name in spec.reverse:
        child_model = _model_or_none(child)
        if child_model is None:
            continue
        try:
            child_model._meta.get_field(field_name)
        except FieldDoesNotExist:
            continue  # that model has no such field (yet): skip the rule
        reverse.setdefault(parent, []).append((child_model, field_name))
    users, files = user_label(), FILE_LABEL
    pending = [root]
    while pending:
        obj = pending.pop()
        label = label_of(obj)
        key = key_of(label, obj.pk)
        if key in graph.records:
            continue
        graph.records[key] = obj
        for fk in _forward_fks(type(obj)):
            target_pk = getattr(obj, fk.attname)
            if target_pk is None:
                continue
            target_label = label_of(fk.related_model)
            if target_label in NOT_EXPORTED:
                continue
            target = getattr(obj, fk.name)
            if target_label == users:
                graph.users[key_of(users, target.pk)] = target
            elif target_label == files:
                graph.files[key_of(files, target.pk)] = target
            else:
                pending.append(target)
        for m2m in _m2ms(type(obj)):
            target_label = label_of(m2m.related_model)
            if target_label == users:
                for user in getattr(obj, m2m.name).all():
                    graph.users[key_of(users, user.pk)] = user
            elif target_label in spec.pull_m2m:
                pending.extend(getattr(obj, m2m.name).all())
        for child_model, field_name in reverse.get(label, []):
            pending.extend(child_model._default_manager.filter(**{field_name: obj}))
    return graph


def _record_dependencies(obj: models.Model) -> list[str]:
    deps = []
    for fk in _forward_fks(type(obj)):
        target_pk = getattr(obj, fk.attname)
        target_label = label_of(fk.related_model)
        if target_pk is None or target_label in NOT_EXPORTED | {user_label(), FILE_LABEL}:
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

    for key in sorted(graph.records, key=_sort_key):
        if state.get(key) is None:
            visit(key)
    return order


def _sort_key(key: str) -> tuple[str, int | str]:
    label, _, pk = key.rpartition(":")
    return (label, int(pk) if pk.isdigit() else pk)


def file_payload_path(stored) -> str:
    return f"data/{FILES_DIR}/{stored.name}"


def serialise_record(obj: models.Model, graph: RecordGraph) -> dict[str, Any]:
    model = type(obj)
    label = label_of(obj)
    fields: dict[str, Any] = {}
    for f in model._meta.concrete_fields:
        if f.primary_key and not f.is_relation:
            fields[f.name] = encode_value(f.value_from_object(obj))
            continue
        if f.is_relation:
            target_pk = getattr(obj, f.attname)
            target_label = label_of(f.related_model)
            if target_pk is None or target_label in NOT_EXPORTED:
                fields[f.name] = None
            else:
                fields[f.name] = key_of(target_label, target_pk)
            continue
        fields[f.name] = encode_value(f.value_from_object(obj))
    m2m: dict[str, list[str]] = {}
    for f in _m2ms(model):
        target_label = label_of(f.related_model)
        pks = getattr(obj, f.name).values_list("pk", flat=True)
        keys = [key_of(target_label, pk) for pk in pks]
        if target_label != user_label():
            keys = [k for k in keys if k in graph.records]
        m2m[f.name] = sorted(keys, key=_sort_key)
    return {"key": key_of(label, obj.pk), "model": label, "fields": fields, "m2m": m2m}


def serialise_graph(graph: RecordGraph) -> dict[str, Any]:
    """The document written to data/atelier.json."""
    users = {
        key: {
            "username": user.get_username(),
            "first_name": getattr(user, "first_name", ""),
            "last_name": getattr(user, "last_name", ""),
        }
        for key, user in sorted(graph.users.items(), key=lambda kv: _sort_key(kv[0]))
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
        for key, stored in sorted(graph.files.items(), key=lambda kv: _sort_key(kv[0]))
    }
    root_key = key_of(label_of(graph.root), graph.root.pk)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "scope": {"kind": graph.spec.kind, "root": root_key, "title": str(graph.root)},
        "agents": users,
        "files": files,
        "records": [serialise_record(graph.records[key], graph) for key in ordered_keys(graph)],
    }


# --- readable extras ---------------------------------------------------------------------------


def _csv_text(rows: list[dict[str, Any]]) -> str:
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


def _dumps(value: Any, sort_keys: bool = True) -> str:
    return json.dumps(
        value, indent=2, ensure_ascii=False, default=encode_value, sort_keys=sort_keys
    )


def _readable_row(obj: models.Model, graph: RecordGraph) -> dict[str, Any]:
    row = serialise_record(obj, graph)["fields"]
    for f in _forward_fks(type(obj)):
        if label_of(f.related_model) == FILE_LABEL and getattr(obj, f.attname):
            row[f.name] = file_payload_path(getattr(obj, f.name))[len("data/") :]
    return row


def readable_extras(graph: RecordGraph) -> dict[str, str]:
    """Payload-relative path -> text of the human-readable files for this bag."""
    out: dict[str, str] = {}
    annotations: dict[Any, list[dict]] = {}
    for ann in graph.of("heritage.semioticannotation"):
        annotations.setdefault(ann.image_id, []).append(
            {
                "category": ann.category,
                "motifs": sorted(ann.motifs.values_list("slug", flat=True)),
                "region_xywh": [ann.region_x, ann.region_y, ann.region_w, ann.region_h]
                if ann.region_x is not None
                else None,
                "meaning": ann.meaning,
                "annotated_on": encode_value(ann.annotated_on),
            }
        )
    for dataset in graph.of("heritage.trainingdataset"):
        examples = [e for e in graph.of("heritage.trainingexample") if e.dataset_id == dataset.pk]
        if not examples:
            continue
        folder = f"datasets/{slugify(dataset.name) or 'dataset'}-v{dataset.version}"
        lines = []
        for example in sorted(examples, key=lambda e: e.pk):
            image_file = example.crop if example.crop_id else example.image.original
            lines.append(
                json.dumps(
                    {
                        "file_name": "../../" + file_payload_path(image_file)[len("data/") :],
                        "text": example.caption,
                        "split": example.split,
                        "accession_number": example.image.item.accession_number,
                        "annotations": annotations.get(example.image_id, []),
                    },
                    ensure_ascii=False,
                )
            )
        out[f"{folder}/metadata.jsonl"] = "\n".join(lines) + "\n"
    for item in graph.of("heritage.heritageitem"):
        images = [i for i in graph.of("heritage.itemimage") if i.item_id == item.pk]
        if images and not graph.of("heritage.trainingdataset"):
            rows = [
                {
                    "accession_number": item.accession_number,
                    "file": file_payload_path(i.original)[len("data/") :],
                    "caption": i.caption,
                    "annotations": annotations.get(i.pk, []),
                }
                for i in images
            ]
            out[f"items/{slugify(item.accession_number) or item.pk}.json"] = _dumps(
                {"title": item.title, "images": rows}
            )
    for run in graph.of("generation.trainingrun"):
        folder = f"runs/run-{run.pk}"
        out[f"{folder}/settings.json"] = _dumps(
            {
                "name": run.name,
                "preset": run.preset,
                "settings": run.settings,
                "trigger_token": run.trigger_token,
                "base_model": {"name": run.base_model.name, "sha256": run.base_model.sha256},
                "dataset": str(run.dataset),
                "status": run.status,
                "final_loss": run.final_loss,
                "metrics": run.metrics,
                "lora_diffusers": file_payload_path(run.lora_diffusers)[5:]
                if run.lora_diffusers_id
                else None,
                "lora_kohya": file_payload_path(run.lora_kohya)[5:] if run.lora_kohya_id else None,
            }
        )
        log = run.loss_log or []
        if log and all(isinstance(row, dict) for row in log):
            out[f"{folder}/loss_log.csv"] = _csv_text(log)
        elif log:
            out[f"{folder}/loss_log.csv"] = _csv_text(
                [{"step": i + 1, "loss": v} for i, v in enumerate(log)]
            )
    requests = graph.of("generation.generationrequest")
    if requests:
        images = graph.of("generation.generatedimage")
        out["generations/requests.csv"] = _csv_text([_readable_row(r, graph) for r in requests])
        out["generations/images.csv"] = _csv_text([_readable_row(i, graph) for i in images])
    for label, name in (
        ("evaluation.rating", "ratings.csv"),
        ("evaluation.metricresult", "metric_results.csv"),
        ("evaluation.studyitem", "study_items.csv"),
    ):
        rows = graph.of(label)
        if rows:
            out[f"study/{name}"] = _csv_text([_readable_row(r, graph) for r in rows])
    report = study_report(graph)
    if report:
        out["study/report.json"] = _dumps(report)
    return out


def study_report(graph: RecordGraph) -> dict[str, Any] | None:
    """The study's report (means ± SD per condition and dimension) from evaluation's code."""
    if graph.spec.kind != "study":
        return None
    try:
        from evaluation.selectors import study_report as evaluation_study_report
    except ImportError:
        return None
    return json.loads(json.dumps(evaluation_study_report(graph.root), default=encode_value))


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
    spec: ScopeSpec,
    root: models.Model,
    workdir: Path,
    bag_name: str,
    external_identifier: str,
    agent=None,
    progress: Progress | None = None,
) -> BuiltBag:
    """Write the bag for ``root`` under ``workdir/bag_name`` and return it."""
    from archives.provenance import provenance_document

    report = progress or (lambda fraction, message: None)
    graph = collect(spec, root)
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
    (folder / RECORDS_FILE).write_text(_dumps(document, sort_keys=False), encoding="utf-8")
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
    (folder / "provenance.json").write_text(_dumps(provenance), encoding="utf-8")
    payload = [p for p in folder.rglob("*") if p.is_file()]
    payload_bytes = sum(p.stat().st_size for p in payload)
    report(0.7, "writing manifests")
    bag_info = {
        "Source-Organization": settings.ATELIER_ORGANISATION,
        "Contact-Email": settings.ATELIER_CONTACT_EMAIL,
        "External-Identifier": external_identifier,
        "External-Description": f"Atelier {spec.kind.replace('_', ' ')}: {root}",
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


def scope_root(scope: str, target_id: Any) -> tuple[ScopeSpec, models.Model]:
    """The spec and root record of an export; LookupError when either does not exist."""
    spec = SCOPES.get(scope)
    if spec is None:
        raise LookupError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    model = _model_or_none(spec.root)
    if model is None:
        raise LookupError(f"{spec.root} is not installed in this instance")
    lookup = {"slug": target_id} if scope == "collection" and not str(target_id).isdigit() else {}
    try:
        root = model._default_manager.get(**(lookup or {"pk": target_id}))
    except (model.DoesNotExist, ValueError):
        raise LookupError(f"no {scope.replace('_', ' ')} {target_id!r}") from None
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
            spec=spec,
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
        raise ValueError(f"unknown archive format {archive_format!r}; use tar or zip")
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
