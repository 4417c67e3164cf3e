"""Expert studies in BagIt bags (``archives.bag_registry``): the ``study`` scope, ratings,
metrics and the study report as readable extras, and their PREMIS events."""

from __future__ import annotations

import json
from typing import Any

from archives.bag_graph import FILE_LABEL, RecordGraph, csv_text, dumps, encode_value, label_of
from archives.bag_graph import readable_row as row_of
from archives.bag_registry import (
    BagScope,
    Relation,
    register_provenance,
    register_readable,
    register_scope,
)
from archives.provenance import ProvenanceBuilder, file_id
from generation.bag import RUNS
from heritage.bag import IMAGE_ANNOTATIONS

STUDY_ITEMS = Relation("evaluation.study", "evaluation.studyitem", "study")
STUDY_ASSIGNMENTS = Relation("evaluation.study", "evaluation.assignment", "study")
STUDY_RATINGS = Relation("evaluation.study", "evaluation.rating", "study")
STUDY_METRICS = Relation("evaluation.study", "evaluation.metricresult", "study")
IMAGE_MEMORISATION = Relation(
    "generation.generatedimage", "evaluation.memorisationcheck", "generated"
)

register_scope(
    BagScope(
        kind="study",
        root="evaluation.study",
        relations=(
            STUDY_ITEMS,
            STUDY_ASSIGNMENTS,
            STUDY_RATINGS,
            STUDY_METRICS,
            IMAGE_MEMORISATION,
            IMAGE_ANNOTATIONS,
        ),
        importable=RUNS
        | {
            "evaluation.panel",
            "evaluation.study",
            "evaluation.studyitem",
            "evaluation.assignment",
            "evaluation.rating",
            "evaluation.metricresult",
            "evaluation.memorisationcheck",
        },
        description="an expert study: its images, panel, assignments, ratings and metrics",
    )
)


def _study_report(graph: RecordGraph) -> dict[str, Any] | None:
    if graph.scope.kind != "study":
        return None
    from evaluation.selectors import study_report

    return json.loads(json.dumps(study_report(graph.root), default=encode_value))


@register_readable
def readable_study(graph: RecordGraph) -> dict[str, str]:
    """Ratings, metric results and study items as CSV; the report (means ± SD) as JSON."""
    out: dict[str, str] = {}
    for label, name in (
        ("evaluation.rating", "ratings.csv"),
        ("evaluation.metricresult", "metric_results.csv"),
        ("evaluation.studyitem", "study_items.csv"),
    ):
        rows = graph.of(label)
        if rows:
            out[f"study/{name}"] = csv_text([row_of(r, graph) for r in rows])
    report = _study_report(graph)
    if report:
        out["study/report.json"] = dumps(report)
    return out


def _rated_files(obj) -> list[str]:
    files = []
    for f in obj._meta.concrete_fields:
        if not f.is_relation or getattr(obj, f.attname) is None:
            continue
        target = getattr(obj, f.name)
        if label_of(f.related_model) == FILE_LABEL:
            files.append(file_id(target))
        elif label_of(f.related_model) == "generation.generatedimage":
            files.append(file_id(target.file))
        elif label_of(f.related_model) == "evaluation.studyitem":
            files.extend(_rated_files(target))
    return files


@register_provenance
def study_events(b: ProvenanceBuilder) -> None:
    """Each expert rating and each metric calculation."""
    for rating in b.graph.of("evaluation.rating"):
        b.event(
            event_type="rating",
            identifier=f"rating:{rating.pk}",
            when=rating.updated_at or rating.created_at,
            detail=f"expert score {rating.dimension} = {rating.score} (1-5)"
            + (f"; comment: {rating.comment}" if rating.comment else ""),
            agents=[(b.person(rating.expert), "rater")],
            sources=_rated_files(rating.item),
        )
    for metric in b.graph.of("evaluation.metricresult"):
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
            sources=[file_id(metric.generated.file), file_id(metric.reference.original)],
        )
