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

The events of files (ingest, fixity) and of the export are written here; the events of an
app's records come from the function its ``bag.py`` registers (``register_provenance``), which
gets the ``ProvenanceBuilder`` and adds events with ``builder.event(...)``.
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

from django.conf import settings

from archives.bag_graph import RecordGraph, encode_value, file_payload_path, key_of, label_of
from archives.bag_registry import provenances

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


class ProvenanceBuilder:
    """Collects the events and agents of one bag; apps add their records' events."""

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


def file_id(stored) -> str:
    """The PREMIS object identifier of a stored file: its path in the bag."""
    return file_payload_path(stored)


def files_of(obj, *names: str) -> list[str]:
    """Identifiers of the stored files in ``obj``'s file fields ``names`` that are set."""
    out = []
    for name in names:
        if getattr(obj, f"{name}_id", None):
            out.append(file_id(getattr(obj, name)))
    return out


def job_times(obj):
    """(job, started, finished) of a record made by a job, falling back on its own dates."""
    job = getattr(obj, "job", None) if getattr(obj, "job_id", None) else None
    started = (job.started_at if job else None) or getattr(obj, "created_at", None)
    finished = (job.finished_at if job else None) or getattr(obj, "finished_at", None)
    return job, started, finished


def provenance_document(
    *, graph: RecordGraph, external_identifier: str, exported_at, exporter=None
) -> dict[str, Any]:
    """The PREMIS-style provenance of everything in ``graph``."""
    b = ProvenanceBuilder(graph)
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
        identifier = file_id(stored)
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
    for contribute in provenances():
        contribute(b)
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
