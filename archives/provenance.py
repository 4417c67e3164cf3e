"""provenance.json: what is in a bag and how it came to be, in PREMIS 3 terms.

* objects: every payload file (objectCategory "file", sha256 fixity, size, format) plus the
  exported record as an intellectual entity;
* events: ingestion of each file, fixity checks, annotation, dataset freezing, training,
  generation, rating and the export itself, each with a date, an outcome and the linked
  objects (role "source" or "outcome") and agents;
* agents: people (by username), the organisation and software with versions.

Event types are plain words (ingest, fixity check, annotation, creation, training, generation,
approval, rating, metric calculation, export); ``eventDetail`` says what happened in a
sentence, ``eventOutcome`` how it ended (success/failure or the job's final status).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from django.conf import settings

from archives.bagit_export import (
    FILE_LABEL,
    RecordGraph,
    encode_value,
    file_payload_path,
    key_of,
    label_of,
)

PREMIS_VERSION = "3.0"
SOFTWARE = ("atelier", "django", "bagit", "torch", "diffusers", "transformers", "peft")


def _version(package: str) -> str:
    if package == "atelier":
        try:
            return importlib.metadata.version("atelier")
        except importlib.metadata.PackageNotFoundError:
            return "0.1.0"
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _id(kind: str, value: str) -> dict[str, str]:
    return {f"{kind}IdentifierType": "local", f"{kind}IdentifierValue": value}


class _Builder:
    def __init__(self, graph: RecordGraph):
        self.graph = graph
        self.events: list[dict[str, Any]] = []
        self.agents: dict[str, dict[str, Any]] = {}
        self.software_agent("atelier")

    def person(self, user) -> str | None:
        if user is None:
            return None
        value = f"user:{user.get_username()}"
        full = f"{getattr(user, 'first_name', '')} {getattr(user, 'last_name', '')}".strip()
        self.agents.setdefault(
            value,
            {
                "agentIdentifier": _id("agent", value),
                "agentName": full or user.get_username(),
                "agentType": "person",
            },
        )
        return value

    def software_agent(self, package: str, version: str | None = None) -> str:
        version = version or _version(package)
        value = f"software:{package}/{version}"
        self.agents.setdefault(
            value,
            {
                "agentIdentifier": _id("agent", value),
                "agentName": package,
                "agentType": "software",
                "agentVersion": version,
            },
        )
        return value

    def organisation(self) -> str:
        value = f"organization:{settings.ATELIER_ORGANISATION}"
        self.agents.setdefault(
            value,
            {
                "agentIdentifier": _id("agent", value),
                "agentName": settings.ATELIER_ORGANISATION,
                "agentType": "organization",
                "agentNote": settings.ATELIER_CONTACT_EMAIL,
            },
        )
        return value

    def event(
        self,
        *,
        event_type: str,
        identifier: str,
        when,
        detail: str,
        outcome: str = "success",
        outcome_detail: str = "",
        agents: list[tuple[str | None, str]] = (),
        sources: list[str] = (),
        outcomes: list[str] = (),
    ) -> None:
        if when is None:
            return
        entry: dict[str, Any] = {
            "eventIdentifier": _id("event", identifier),
            "eventType": event_type,
            "eventDateTime": encode_value(when),
            "eventDetailInformation": [{"eventDetail": detail}],
            "eventOutcomeInformation": [{"eventOutcome": outcome}],
            "linkingAgentIdentifier": [
                {**_id("linkingAgent", agent), "linkingAgentRole": [role]}
                for agent, role in agents
                if agent
            ],
            "linkingObjectIdentifier": [
                {**_id("linkingObject", obj), "linkingObjectRole": ["source"]} for obj in sources
            ]
            + [{**_id("linkingObject", obj), "linkingObjectRole": ["outcome"]} for obj in outcomes],
        }
        if outcome_detail:
            entry["eventOutcomeInformation"][0]["eventOutcomeDetail"] = [
                {"eventOutcomeDetailNote": outcome_detail}
            ]
        self.events.append(entry)


def _file_id(stored) -> str:
    return file_payload_path(stored)


def _files_of(obj, *names: str) -> list[str]:
    out = []
    for name in names:
        if getattr(obj, f"{name}_id", None):
            out.append(_file_id(getattr(obj, name)))
    return out


def _job_times(obj):
    job = getattr(obj, "job", None) if getattr(obj, "job_id", None) else None
    started = (job.started_at if job else None) or getattr(obj, "created_at", None)
    finished = (job.finished_at if job else None) or getattr(obj, "finished_at", None)
    return job, started, finished


def _training_events(b: _Builder) -> None:
    graph = b.graph
    for run in graph.of("generation.trainingrun"):
        _job, started, finished = _job_times(run)
        dataset_files = [
            _file_id(e.crop if e.crop_id else e.image.original)
            for e in graph.of("heritage.trainingexample")
            if e.dataset_id == run.dataset_id
        ]
        versions = (run.settings or {}).get("software") or {}
        software = [b.software_agent(p, versions.get(p)) for p in ("torch", "diffusers", "peft")]
        b.event(
            event_type="training",
            identifier=f"training:run-{run.pk}",
            when=finished or started,
            detail=(
                f"LoRA fine-tuning of {run.base_model.name} "
                f"(sha256 {run.base_model.sha256 or 'unrecorded'}) on {run.dataset}, "
                f"preset {run.preset or 'custom'}, started {encode_value(started)}"
            ),
            outcome=run.status,
            outcome_detail=run.error or (f"final loss {run.final_loss}" if run.final_loss else ""),
            agents=[(b.person(run.created_by), "requester")]
            + [(s, "executing program") for s in software],
            sources=dataset_files,
            outcomes=_files_of(run, "lora_diffusers", "lora_kohya")
            + [
                _file_id(v.file)
                for v in graph.of("generation.validationimage")
                if v.run_id == run.pk
            ],
        )


def _generation_events(b: _Builder) -> None:
    graph = b.graph
    images = graph.of("generation.generatedimage")
    for request in graph.of("generation.generationrequest"):
        _job, started, finished = _job_times(request)
        run = request.training_run if request.training_run_id else None
        b.event(
            event_type="generation",
            identifier=f"generation:request-{request.pk}",
            when=finished or started,
            detail=(
                f"{request.sampler} {request.steps} steps, CFG {request.cfg}, "
                f"{request.width}x{request.height}, seeds {request.seeds}, "
                f"base {request.base_model.name}"
                + (f", LoRA of run {run.pk} at scale {request.lora_scale}" if run else "")
                + f"; prompt: {request.final_prompt or request.prompt}"
            ),
            outcome=request.status,
            agents=[
                (b.person(request.created_by), "requester"),
                (b.software_agent("diffusers"), "executing program"),
            ],
            sources=_files_of(run, "lora_diffusers") if run else [],
            outcomes=[_file_id(i.file) for i in images if i.request_id == request.pk]
            + _files_of(request, "contact_sheet"),
        )
    for image in images:
        if image.approved and image.approved_at:
            b.event(
                event_type="approval",
                identifier=f"approval:generatedimage-{image.pk}",
                when=image.approved_at,
                detail="approved by a curator for the kiosk",
                agents=[(b.person(image.approved_by), "approver")],
                sources=[_file_id(image.file)],
            )


def _rating_events(b: _Builder) -> None:
    graph = b.graph
    for rating in graph.of("evaluation.rating"):
        b.event(
            event_type="rating",
            identifier=f"rating:{rating.pk}",
            when=rating.updated_at or rating.created_at,
            detail=f"expert score {rating.dimension} = {rating.score} (1-5)"
            + (f"; comment: {rating.comment}" if rating.comment else ""),
            agents=[(b.person(rating.expert), "rater")],
            sources=_rated_files(rating.item),
        )
    for metric in graph.of("evaluation.metricresult"):
        b.event(
            event_type="metric calculation",
            identifier=f"metric:{metric.pk}",
            when=metric.computed_at,
            detail=(
                f"{metric.condition}: MSE {metric.mse:.4f}, PSNR "
                f"{'inf' if metric.psnr is None else f'{metric.psnr:.2f}'} dB, "
                f"SSIM {metric.ssim:.4f} at {metric.width}x{metric.height}"
            ),
            agents=[(b.software_agent("scikit-image"), "executing program")],
            sources=[_file_id(metric.generated.file), _file_id(metric.reference.original)],
        )


def _rated_files(obj) -> list[str]:
    files = []
    for f in obj._meta.concrete_fields:
        if not f.is_relation or getattr(obj, f.attname) is None:
            continue
        target = getattr(obj, f.name)
        if label_of(f.related_model) == FILE_LABEL:
            files.append(_file_id(target))
        elif label_of(f.related_model) == "generation.generatedimage":
            files.append(_file_id(target.file))
        elif label_of(f.related_model) == "evaluation.studyitem":
            files.extend(_rated_files(target))
    return files


def provenance_document(
    *, graph: RecordGraph, external_identifier: str, exported_at, exporter=None
) -> dict[str, Any]:
    """The PREMIS-style provenance of everything in ``graph``."""
    b = _Builder(graph)
    atelier = b.software_agent("atelier")
    objects: list[dict[str, Any]] = []
    root_key = key_of(label_of(graph.root), graph.root.pk)
    objects.append(
        {
            "objectIdentifier": [_id("object", root_key)],
            "objectCategory": "intellectual entity",
            "originalName": str(graph.root),
            "significantProperties": [
                {"significantPropertiesType": "records", "significantPropertiesValue": str(n)}
                for n in [len(graph.records)]
            ],
        }
    )
    for stored in graph.files.values():
        identifier = _file_id(stored)
        objects.append(
            {
                "objectIdentifier": [_id("object", identifier)],
                "objectCategory": "file",
                "objectCharacteristics": [
                    {
                        "fixity": [
                            {"messageDigestAlgorithm": "SHA-256", "messageDigest": stored.sha256}
                        ],
                        "size": stored.size,
                        "format": [
                            {"formatDesignation": {"formatName": stored.content_type or "unknown"}}
                        ],
                    }
                ],
                "originalName": stored.name,
            }
        )
        b.event(
            event_type="ingest",
            identifier=f"ingest:{identifier}",
            when=stored.created_at,
            detail="written to storage with its sha256 recorded",
            agents=[(atelier, "executing program")],
            outcomes=[identifier],
        )
        if stored.last_fixity_at:
            b.event(
                event_type="fixity check",
                identifier=f"fixity:{identifier}",
                when=stored.last_fixity_at,
                detail="sha256 of the stored bytes compared with the recorded sha256",
                outcome="success" if stored.last_fixity_ok else "failure",
                agents=[(atelier, "executing program")],
                sources=[identifier],
            )
    for annotation in graph.of("heritage.semioticannotation"):
        b.event(
            event_type="annotation",
            identifier=f"annotation:{annotation.pk}",
            when=annotation.annotated_on or annotation.created_at,
            detail=f"{annotation.get_category_display()} reading of an image",
            agents=[(b.person(annotation.annotator), "annotator")],
            sources=[_file_id(annotation.image.original)],
        )
    for dataset in graph.of("heritage.trainingdataset"):
        if dataset.frozen_at:
            b.event(
                event_type="creation",
                identifier=f"dataset:{dataset.pk}",
                when=dataset.frozen_at,
                detail=f"training dataset {dataset} frozen (content hash {dataset.content_hash})",
                agents=[(b.person(dataset.created_by), "creator")],
            )
    _training_events(b)
    _generation_events(b)
    _rating_events(b)
    b.event(
        event_type="export",
        identifier=f"export:{external_identifier}",
        when=exported_at,
        detail=f"exported as BagIt bag {external_identifier} (sha256 and sha512 manifests)",
        agents=[
            (
                b.person(exporter) if getattr(exporter, "is_authenticated", False) else None,
                "requester",
            ),
            (atelier, "executing program"),
            (b.software_agent("bagit"), "executing program"),
            (b.organisation(), "custodian"),
        ],
        sources=[root_key],
    )
    for package in SOFTWARE:
        b.software_agent(package)
    b.events.sort(key=lambda e: (e["eventDateTime"], e["eventIdentifier"]["eventIdentifierValue"]))
    return {
        "premisVersion": PREMIS_VERSION,
        "bag": external_identifier,
        "objects": objects,
        "events": b.events,
        "agents": sorted(
            b.agents.values(), key=lambda a: a["agentIdentifier"]["agentIdentifierValue"]
        ),
    }
