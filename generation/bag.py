"""Training runs in BagIt bags (``archives.bag_registry``): the ``training_run`` scope, the
records of runs and generations, their readable extras and PREMIS events."""

from __future__ import annotations

from archives.bag_graph import RecordGraph, csv_text, dumps, encode_value, file_payload_path
from archives.bag_graph import readable_row as row_of
from archives.bag_registry import (
    BagScope,
    RecordRules,
    Relation,
    register_provenance,
    register_readable,
    register_records,
    register_scope,
)
from archives.provenance import ProvenanceBuilder, file_id, files_of, job_times
from generation.charts import run_loss_chart_svg
from heritage.bag import CATALOGUE, DATASET_EXAMPLES, DATASETS, IMAGE_ANNOTATIONS

RUN_VALIDATION_IMAGES = Relation("generation.trainingrun", "generation.validationimage", "run")
RUN_REQUESTS = Relation("generation.trainingrun", "generation.generationrequest", "training_run")
REQUEST_IMAGES = Relation("generation.generationrequest", "generation.generatedimage", "request")

# A run, what it was trained on and what it made (the study scope builds on this list).
RUNS = (
    CATALOGUE
    | DATASETS
    | {
        "generation.basemodel",
        "generation.sweep",
        "generation.trainingrun",
        "generation.trainingcheckpoint",  # the one a generation request names, if any
        "generation.generationrequest",
        "generation.generatedimage",
    }
)

register_scope(
    BagScope(
        kind="training_run",
        root="generation.trainingrun",
        relations=(
            DATASET_EXAMPLES,
            IMAGE_ANNOTATIONS,
            RUN_VALIDATION_IMAGES,
            RUN_REQUESTS,
            REQUEST_IMAGES,
        ),
        importable=RUNS | {"generation.validationimage"},
        description="a training run: its dataset, LoRA files, validation images, generations",
    )
)
# A base model already registered here (by name) is reused; this instance keeps its default.
register_records(
    RecordRules("generation.basemodel", reuse_by=("name",), import_overrides={"is_default": False})
)
# Runs and requests read their state from their job: the bag carries its outcome, an import
# gives them a finished job with it (never a queued one).
register_records(RecordRules("generation.trainingrun", job_outcome=True))
register_records(RecordRules("generation.generationrequest", job_outcome=True))


@register_readable
def readable_runs(graph: RecordGraph) -> dict[str, str]:
    """A run's settings and loss log; generation requests and images as CSV."""
    out: dict[str, str] = {}
    for run in graph.of("generation.trainingrun"):
        folder = f"runs/run-{run.pk}"
        out[f"{folder}/settings.json"] = dumps(
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
            out[f"{folder}/loss_log.csv"] = csv_text(log)
            # The chart the run page shows (matplotlib, no torch), for a reader of the bag.
            out[f"{folder}/loss_chart.svg"] = run_loss_chart_svg(run)
        elif log:
            out[f"{folder}/loss_log.csv"] = csv_text(
                [{"step": i + 1, "loss": v} for i, v in enumerate(log)]
            )
    requests = graph.of("generation.generationrequest")
    if requests:
        images = graph.of("generation.generatedimage")
        out["generations/requests.csv"] = csv_text([row_of(r, graph) for r in requests])
        out["generations/images.csv"] = csv_text([row_of(i, graph) for i in images])
    return out


@register_provenance
def generation_events(b: ProvenanceBuilder) -> None:
    """Training of each run, generation of each request, approval of images for the kiosk."""
    graph = b.graph
    for run in graph.of("generation.trainingrun"):
        _job, started, finished = job_times(run)
        dataset_files = [
            file_id(e.crop if e.crop_id else e.image.original)
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
            outcomes=files_of(run, "lora_diffusers", "lora_kohya")
            + [
                file_id(v.file)
                for v in graph.of("generation.validationimage")
                if v.run_id == run.pk
            ],
        )
    images = graph.of("generation.generatedimage")
    for request in graph.of("generation.generationrequest"):
        _job, started, finished = job_times(request)
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
            sources=files_of(run, "lora_diffusers") if run else [],
            outcomes=[file_id(i.file) for i in images if i.request_id == request.pk]
            + files_of(request, "contact_sheet"),
        )
    for image in images:
        if image.approved and image.approved_at:
            b.event(
                event_type="approval",
                identifier=f"approval:generatedimage-{image.pk}",
                when=image.approved_at,
                detail="approved by a curator for the kiosk",
                agents=[(b.person(image.approved_by), "approver")],
                sources=[file_id(image.file)],
            )
