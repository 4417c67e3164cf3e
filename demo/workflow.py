"""The demo experiment through the apps, as a museum runs it (``manage.py demo_workflow``).

1. The demo catalogue (``load_demo_catalogue``) with its frozen "Atlas demo set" training
   dataset (64 px crops; the validation split is the held-out set).
2. A TrainingRun (``generation.services.training_run_create``) with the demo experiment's
   settings: the ``atlas-000`` preset scaled to the CPU.
3. For each held-out (validation) caption, a GenerationRequest with "compare with base": base
   and LoRA images with identical seeds, linked to the held-out item.
4. An evaluation Study of those images; its ``evaluation.metrics`` job measures MSE, PSNR and
   SSIM of every image against its item's original; the table comes from the study report.

Every step is a queued job. A running worker does it (``--worker`` starts one); with none, this
process runs the same job through ``jobs.queue.run_job`` (which claims the row, so a
worker that turns up later skips it). Re-running makes a new run, requests and study.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import close_old_connections, connection, transaction
from django.urls import reverse

from jobs.models import Job
from jobs.queue import run_job

DATASET_NAME = "Atlas demo set"
DEMO_EXPERT = "demo-expert"
DEMO_PANEL = "Demo panel (demo_workflow)"
EXECUTORS = ("auto", "worker", "inline")


def demo_training_settings() -> tuple[str, dict[str, Any]]:
    """(preset, settings) of the demo experiment (demo/experiment.py).

    Uses its ``DEMO_LORA_SETTINGS`` / ``demo_lora_config()`` when it exposes one; otherwise the
    ``atlas-000`` preset with the experiment's epochs and caption dropout (the resolution is the
    dataset's, 64 px).
    """
    from demo import experiment as de

    exposed = getattr(de, "DEMO_LORA_SETTINGS", None)
    if exposed is None and callable(getattr(de, "demo_lora_config", None)):
        exposed = de.demo_lora_config()
    if exposed is not None:
        settings = exposed.to_dict() if hasattr(exposed, "to_dict") else dict(exposed)
        preset = settings.pop("preset", "atlas-000")
        settings.pop("resolution", None)  # the frozen crops' size
        settings.pop("validation_prompts", None)  # the run uses the held-out captions
        return preset, settings
    exp = de.DemoExperiment()
    return "atlas-000", {
        "epochs": exp.epochs,
        "checkpoint_every_epochs": exp.epochs,
        "caption_dropout": getattr(exp, "caption_dropout", 0.1),
    }


def demo_generation_settings() -> dict[str, Any]:
    """Seeds, DDIM steps and CFG of the demo experiment's generation step."""
    from demo import experiment as de

    exposed = getattr(de, "DEMO_GENERATION_SETTINGS", None)
    if exposed is None:
        exp = de.DemoExperiment()
        exposed = {"seeds": exp.seeds, "steps": exp.steps, "cfg": exp.cfg}
    return {"seeds": list(exposed["seeds"]), "steps": exposed["steps"], "cfg": exposed["cfg"]}


@dataclass
class WorkflowOptions:
    atlas: int = 28  # Atlas demo images in the catalogue (about 1 in 7 held out)
    landscapes: int = 6
    image_size: int = 384  # catalogue images; the dataset crops them to 64 px
    training: dict[str, Any] = field(default_factory=dict)  # overrides of the demo settings
    seeds: list[int] | None = None  # None: the demo experiment's
    steps: int | None = None
    cfg: float | None = None
    max_prompts: int | None = None  # held-out captions used (None: all)
    executor: str = "auto"  # "worker": wait for workers; "inline": run jobs here
    worker_wait: float = 20.0  # "auto": seconds a listening worker has to pick a job up
    job_timeout: float = 3600.0


class WorkflowError(RuntimeError):
    pass


def _workers_listening(queue: str) -> bool:
    try:
        import django_rq
        from rq import Worker

        return bool(Worker.all(queue=django_rq.get_queue(queue)))
    except Exception:
        return False


def _create(make: Callable[[], Any], say: Callable[[str], None]) -> Any:
    """Call a service that queues a job; when Redis is away the rows are still committed, so
    the job can run in this process."""
    made: list[Any] = []
    try:
        with transaction.atomic():
            made.append(make())
    except Exception as exc:
        if not made:
            raise
        say(f"  (could not reach the queue: {exc}; running the job here)")
    return made[0]


def _run_inline(job: Job) -> threading.Thread:
    def target() -> None:
        try:
            run_job(str(job.id))
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=f"job-{job.id}", daemon=True)
    thread.start()
    return thread


def wait_job(
    job: Job,
    *,
    label: str,
    options: WorkflowOptions,
    say: Callable[[str], None],
    describe: Callable[[Job], str] | None = None,
) -> Job:
    """Let a worker run the job, or run it here; print progress lines until it ends."""
    thread = None
    if options.executor == "inline" or (
        options.executor == "auto" and not _workers_listening(job.queue)
    ):
        thread = _run_inline(job)
    started = time.monotonic()
    last_line, last_print = "", 0.0
    while True:
        close_old_connections()
        job.refresh_from_db()
        if job.is_finished:
            break
        waited = time.monotonic() - started
        if (
            thread is None
            and options.executor == "auto"
            and job.status == Job.Status.QUEUED
            and waited > options.worker_wait
        ):
            say(
                f"  no worker took the {label} job within {options.worker_wait:.0f} s; "
                "running it here"
            )
            thread = _run_inline(job)
        if waited > options.job_timeout:
            raise WorkflowError(f"{label}: job {job.id} did not finish in {options.job_timeout} s")
        line = f"  {label}: {job.status} {job.progress * 100:5.1f} % {job.message}"
        if describe is not None:
            line += describe(job)
        now = time.monotonic()
        if line != last_line and now - last_print >= 5.0:
            say(line)
            last_line, last_print = line, now
        time.sleep(0.25)
    if thread is not None:
        thread.join()
    where = f"worker {job.worker_name}" if thread is None else "this process"
    say(f"  {label}: {job.status} in {time.monotonic() - started:.1f} s ({where})")
    if job.status != Job.Status.SUCCEEDED:
        raise WorkflowError(f"{label} {job.status}: {job.error or job.message}")
    return job


def _eta(job: Job) -> str:
    eta = (job.data or {}).get("eta_seconds")
    return f", about {eta:.0f} s left" if isinstance(eta, int | float) else ""


def _demo_panel():
    User = get_user_model()
    from evaluation.models import Panel
    from evaluation.services import EXPERT_GROUP, panel_create, panel_members_set

    expert = User.objects.filter(username=DEMO_EXPERT).first()
    if expert is None:
        expert = User.objects.create_user(username=DEMO_EXPERT)  # no password: no login
    expert.groups.add(Group.objects.get_or_create(name=EXPERT_GROUP)[0])
    members = [expert]
    # The `expert` demo login (./atelier run makes it) rates the study too, so the study URL
    # the command prints opens for someone who can log in.
    login = User.objects.filter(username="expert", groups__name=EXPERT_GROUP).first()
    if login is not None:
        members.append(login)
    panel = Panel.objects.filter(name=DEMO_PANEL).first()
    if panel is not None:
        return panel_members_set(panel=panel, members=[*panel.members.all(), *members])
    return panel_create(
        name=DEMO_PANEL,
        members=members,
        description="Made by manage.py demo_workflow for the automated metrics.",
    )


def format_metrics_table(rows: list[dict[str, Any]]) -> str:
    from evaluation.services import REFERENCE_FLAT, REFERENCE_OTHERS

    names = {
        "base": "base (demo model)",
        "lora": "base + Atlas LoRA",
        REFERENCE_OTHERS: "*reference:* real Atlas silk (training images vs held-out)",
        REFERENCE_FLAT: "*reference:* flat image of the original's mean colour",
    }

    def num(value, fmt):
        return "-" if value is None else format(value, fmt)

    lines = [
        "| condition | pairs | MSE (lower is better) | PSNR dB (higher) | SSIM (higher) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {names.get(r['condition'], r['condition'])} | {r['n_pairs']} "
            f"| {num(r['mse_mean'], '.1f')} ± {num(r['mse_sd'], '.1f')} "
            f"| {num(r['psnr_mean'], '.2f')} ± {num(r['psnr_sd'], '.2f')} "
            f"| {num(r['ssim_mean'], '.4f')} ± {num(r['ssim_sd'], '.4f')} |"
        )
    return "\n".join(lines)


def format_references(result: dict[str, Any]) -> str:
    """The report's references and protocols, as the demo command prints them."""
    lines = ["References of the metrics (declared on the study):"]
    for r in result["study_references"]:
        flag = f"  <- {r['flag']}" if r["flag"] else ""
        lines.append(
            f"  image {r['image_id']} ({r['accession_number']}): split {r['split']}, "
            f"used for {', '.join(r['used_for'])}{flag}"
        )
    if not result["study_references"]:
        lines.append("  none")
    lines.append(f"{result['pairs']} generated image / reference pairs. Protocols:")
    for p in result["protocols"]:
        lines.append(f"  - {p['name']}: {p['description']}")
    for d in result["distribution"]:
        lines.append(
            f"  distribution, {d['label']}: SWD x1e3 {d['swd_x1e3']:.1f}, colour EMD "
            f"{d['colour_emd']:.2f} ({d['n_generated']} generated vs {d['n_references']} "
            f"references); KID / CLIP: {d['features']['status']}"
        )
    return "\n".join(lines)


def run_demo_workflow(
    options: WorkflowOptions | None = None,
    *,
    user=None,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the whole demo through the apps; returns ids, URLs and the metrics table."""
    from evaluation.selectors import study_report
    from evaluation.services import study_create, study_request_metrics
    from generation.models import GeneratedImage
    from generation.services import generation_request_create, training_run_create
    from heritage.models import TrainingDataset
    from heritage.selectors import dataset_examples

    options = options or WorkflowOptions()
    if options.executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}")
    started = time.monotonic()

    say("1/5 demo catalogue and the frozen Atlas training dataset")
    call_command(
        "load_demo_catalogue",
        atlas=options.atlas,
        landscapes=options.landscapes,
        size=options.image_size,
        worker_wait=max(options.worker_wait, 60.0),
        stdout=_Lines(say),
    )
    dataset = TrainingDataset.objects.filter(name=DATASET_NAME, frozen=True).order_by("-version")
    dataset = dataset.first()
    if dataset is None:
        raise WorkflowError(f"no frozen {DATASET_NAME!r} dataset after load_demo_catalogue")
    heldout = list(dataset_examples(dataset, split="validation").select_related("image__item"))
    if options.max_prompts is not None:
        heldout = heldout[: options.max_prompts]
    if not heldout:
        raise WorkflowError(f"{dataset} has no validation (held-out) examples")

    preset, settings = demo_training_settings()
    settings = {**settings, **options.training}
    say(f"2/5 LoRA training run on {dataset} (preset {preset}, {settings})")
    run = _create(
        lambda: training_run_create(
            dataset=dataset,
            preset=preset,
            settings=settings,
            name=f"Atlas demo LoRA · {dataset.name} v{dataset.version} (demo_workflow)",
            user=user,
        ),
        say,
    )
    wait_job(run.job, label="training", options=options, say=say, describe=_eta)
    run.refresh_from_db()
    if run.lora_diffusers_id is None:
        raise WorkflowError(f"training run {run.pk} ended without a LoRA file")
    say(
        f"  LoRA: {run.lora_diffusers.name} (diffusers), "
        f"{run.lora_kohya.name if run.lora_kohya_id else '-'} (kohya)"
    )

    gen = demo_generation_settings()
    seeds = list(options.seeds if options.seeds is not None else gen["seeds"])
    steps = options.steps if options.steps is not None else gen["steps"]
    cfg = options.cfg if options.cfg is not None else gen["cfg"]
    say(
        f"3/5 base and LoRA images for {len(heldout)} held-out captions, seeds {seeds}, "
        f"DDIM {steps} steps, CFG {cfg}"
    )
    requests = []
    for n, example in enumerate(heldout, 1):
        request = _create(
            lambda example=example: generation_request_create(
                prompt=example.caption,
                item=example.image.item,
                training_run=run,
                seeds=seeds,
                steps=steps,
                cfg=cfg,
                compare_with_base=True,
                user=user,
            ),
            say,
        )
        wait_job(request.job, label=f"generation {n}/{len(heldout)}", options=options, say=say)
        requests.append(request)

    say("4/5 evaluation study and its metrics job (MSE, PSNR, SSIM against the originals)")
    images = list(
        GeneratedImage.objects.filter(request__in=requests).order_by("request_id", "seed", "pk")
    )
    study = study_create(
        title=f"Atlas demo LoRA vs base · run {run.pk} (demo_workflow)",
        panel=_demo_panel(),
        generated_images=images,
        reference_condition="base",
        description="Automated metrics of the demo workflow: held-out Atlas captions, base and "
        "LoRA images with identical seeds, compared with the held-out originals.",
        seed=0,
        user=user,
    )
    job = _create(lambda: study_request_metrics(study=study, user=user), say)
    wait_job(job, label="metrics", options=options, say=say)

    say("5/5 report")
    study.refresh_from_db()  # the metrics job wrote its reference rows
    report = study_report(study, n_boot=200)
    table = report["metrics"]
    # The held-out protocol: the LoRA's images against originals it was not trained on.
    by = {r["condition"]: r for r in table if r.get("protocol") == "held_out"}
    lora_wins = None
    if "base" in by and "lora" in by:
        b, lo = by["base"], by["lora"]
        lora_wins = {
            "mse": lo["mse_mean"] < b["mse_mean"],
            "psnr": (lo["psnr_mean"] or 0) > (b["psnr_mean"] or 0),
            "ssim": lo["ssim_mean"] > b["ssim_mean"],
        }
    urls = {
        "home": reverse("curator-home"),
        "approvals": reverse("evaluation-curator:approvals"),
        "run": reverse("generation:run", args=[run.pk]),
        "requests": [reverse("generation:request", args=[r.pk]) for r in requests],
        "study": reverse("evaluation:study", args=[study.pk]),
        "report": reverse("evaluation:report", args=[study.pk]),
    }
    return {
        "dataset": {"id": dataset.pk, "name": dataset.name, "version": dataset.version},
        "run_id": run.pk,
        "preset": preset,
        "settings": settings,
        "request_ids": [r.pk for r in requests],
        "study_id": study.pk,
        "prompts": [e.caption for e in heldout],
        "seeds": seeds,
        "steps": steps,
        "cfg": cfg,
        "table": table,
        # What real Atlas cloth and a flat image score against the same originals (the metrics
        # job's reference rows): the rows above read differently beside them.
        "references": report["metric_references"],
        # What the metrics compared with what (image, accession number, dataset split), under
        # which protocols, and the distribution protocol's rows (sliced Wasserstein, colour).
        "study_references": report["references"],
        "protocols": report["protocols"],
        "distribution": report["distribution"],
        "pairs": len(report["pairings"]),
        "warnings": report["warnings"],
        "lora_wins": lora_wins,
        "urls": urls,
        "seconds": round(time.monotonic() - started, 1),
    }


class _Lines:
    """A file-like for call_command's stdout that forwards lines to ``say``."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def write(self, text: str) -> None:
        for line in text.rstrip("\n").splitlines():
            self.say(f"  {line}")

    def flush(self) -> None:
        pass
