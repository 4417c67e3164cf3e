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
    register_check,
    register_provenance,
    register_readable,
    register_scope,
)
from archives.provenance import ProvenanceBuilder, file_id
from generation.bag import RUNS
from heritage.bag import DATASET_EXAMPLES, IMAGE_ANNOTATIONS

STUDY_ITEMS = Relation("evaluation.study", "evaluation.studyitem", "study")
STUDY_ASSIGNMENTS = Relation("evaluation.study", "evaluation.assignment", "study")
STUDY_RATINGS = Relation("evaluation.study", "evaluation.rating", "study")
STUDY_METRICS = Relation("evaluation.study", "evaluation.metricresult", "study")
STUDY_REFERENCES = Relation("evaluation.study", "evaluation.studyreference", "study")
STUDY_RATING_CHANGES = Relation("evaluation.study", "evaluation.ratingchange", "study")
CLOSURE_FILE = "study/closure.json"
IMAGE_MEMORISATION = Relation(
    "generation.generatedimage", "evaluation.memorisationcheck", "generated"
)

register_scope(
    BagScope(
        kind="study",
        root="evaluation.study",
        # Every example of the compared runs' datasets comes along (not only the nearest ones
        # the memorisation check points at): the bag is complete or it fails validation.
        relations=(
            STUDY_ITEMS,
            STUDY_ASSIGNMENTS,
            STUDY_RATINGS,
            STUDY_METRICS,
            STUDY_REFERENCES,
            STUDY_RATING_CHANGES,
            IMAGE_MEMORISATION,
            IMAGE_ANNOTATIONS,
            DATASET_EXAMPLES,
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
            "evaluation.studyreference",
            "evaluation.ratingchange",
        },
        description="an expert study: its images, panel, assignments, ratings, metrics, "
        "references, and the runs and datasets (every example) that made its images",
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
    if graph.scope.kind == "study":
        out[CLOSURE_FILE] = dumps(study_closure(graph.root))
    return out


def study_closure(study) -> dict[str, list[str]]:
    """What a study bag must hold, read from the database (not from the gathered graph): its
    items, ratings and their history, metrics, references, the runs that made its images,
    their base models and datasets, and every example of those datasets."""
    from evaluation.models import RatingChange, StudyReference
    from generation.models import TrainingRun
    from heritage.models import TrainingExample

    runs = TrainingRun.objects.filter(
        pk__in=study.items.filter(generated__request__training_run__isnull=False).values(
            "generated__request__training_run"
        )
    )
    wanted = {
        "evaluation.studyitem": study.items.values_list("pk", flat=True),
        "evaluation.rating": study.ratings.values_list("pk", flat=True),
        "evaluation.ratingchange": RatingChange.objects.filter(study=study).values_list(
            "pk", flat=True
        ),
        "evaluation.metricresult": study.metric_results.values_list("pk", flat=True),
        "evaluation.studyreference": StudyReference.objects.filter(study=study).values_list(
            "pk", flat=True
        ),
        "heritage.itemimage": StudyReference.objects.filter(study=study).values_list(
            "image_id", flat=True
        ),
        "generation.trainingrun": runs.values_list("pk", flat=True),
        "generation.basemodel": runs.values_list("base_model_id", flat=True),
        "heritage.trainingdataset": runs.values_list("dataset_id", flat=True),
        "heritage.trainingexample": TrainingExample.objects.filter(
            dataset__in=runs.values("dataset")
        ).values_list("pk", flat=True),
    }
    return {label: sorted(f"{label}:{pk}" for pk in set(pks)) for label, pks in wanted.items()}


@register_check
def study_complete(document: dict[str, Any], payload) -> list[str]:
    """A study bag holds every record its closure list names (written at export from the
    database, so a relation the gathering missed shows here)."""
    if (document.get("scope") or {}).get("kind") != "study":
        return []
    path = payload / CLOSURE_FILE
    if not path.is_file():
        return [f"data/{CLOSURE_FILE} is missing: the study bag cannot show it is complete."]
    try:
        closure = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        return [f"data/{CLOSURE_FILE} is not JSON: {exc}."]
    present = {r["key"] for r in document.get("records", [])}
    problems = []
    for label, keys in sorted(closure.items()):
        missing = [k for k in keys if k not in present]
        if missing:
            problems.append(
                f"The study bag holds {len(keys) - len(missing)} of {len(keys)} {label} "
                f"records; missing: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}."
            )
    return problems


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
