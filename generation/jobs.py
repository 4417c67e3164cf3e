"""Job kinds of the generation app, on the ``gpu`` queue.

``generation.train``: a TrainingRun row -> LoraTrainingConfig -> ``train_lora`` on crops fetched
from storage into a temporary folder -> LoRA files, checkpoints and validation images stored
back (with sha256). Checkpoints go to storage as soon as they are written, so after a crash
the re-queued job (any worker) resumes from the newest one.

``generation.generate``: a GenerationRequest -> one PNG per seed and condition from the worker's
warm pipeline cache -> stored with A1111 parameters and a provenance chunk, plus a contact sheet.

torch and diffusers are imported inside the handlers only.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from archives.services import stored_file_read
from generation import services
from generation.hooks import run_metrics_compute
from generation.models import BaseModel, GeneratedImage, GenerationRequest, TrainingRun
from generation.selectors import loss_curve_points
from jobs.models import Job
from jobs.queue import JobCancelled, job_handler, job_progress

PROGRESS_INTERVAL = 0.5  # seconds between progress writes (and cancel checks)


# --- base model registration -------------------------------------------------------------------


@job_handler(
    "generation.base_model_register",
    queue="default",
    timeout=services.BASE_MODEL_CHECK_TIMEOUT + 120,
)
def base_model_register(job: Job) -> dict[str, Any]:
    """Load the base model ``params["base_model_id"]`` once (in a child process) and record
    what it is; a model that does not load fails the job with the reason."""
    model = BaseModel.objects.get(pk=job.params["base_model_id"])
    job_progress(job, 0.1, f"loading {model.path} once to check it")
    report = services.base_model_inspect(model.path)
    model = services.base_model_registration_complete(
        model=model, report=report, make_default=bool(job.params.get("make_default"))
    )
    return {
        "base_model_id": model.pk,
        "kind": model.kind,
        "sha256": model.sha256,
        "resolution": model.resolution,
        "is_default": model.is_default,
    }


# --- prompt drafting ---------------------------------------------------------------------------


@job_handler("generation.prompt_draft", queue="default", timeout=10 * 60)
def prompt_draft(job: Job) -> dict[str, Any]:
    """Ask the LLM for a prompt draft of the passage ``params["passage_id"]`` and keep it on
    the passage. A refusal or failure ends the job with the reason (no traceback)."""
    from django.core.exceptions import ValidationError

    from generation.diffusion.prompting import PromptDraftError, PromptDraftRefused
    from heritage.models import GazetteerPassage

    passage = GazetteerPassage.objects.get(pk=job.params["passage_id"])
    job_progress(job, 0.1, "asking the language model")
    try:
        text = services.passage_prompt_draft(passage=passage)
    except PromptDraftRefused as exc:  # its message says so ("The language model declined")
        raise ValidationError(str(exc), code="refused") from None
    except PromptDraftError as exc:
        raise ValidationError(str(exc), code="failed") from None
    return {
        "passage_id": passage.pk,
        "prompt_draft": text,
        "message": f"Draft kept on the passage (edit and approve it): {text}"[:500],
    }


# --- training ----------------------------------------------------------------------------------


@job_handler("generation.train", queue="gpu", timeout=24 * 60 * 60)
def train(job: Job) -> dict[str, Any]:
    """Train the run ``params["run_id"]``; the run reads its status from this job."""
    run = TrainingRun.objects.select_related("dataset", "base_model").get(pk=job.params["run_id"])
    with tempfile.TemporaryDirectory(prefix=f"atelier-run-{run.pk}-") as tmp:
        return _train(job, run, Path(tmp))


def _provenance(run: TrainingRun) -> dict[str, Any]:
    from heritage.selectors import dataset_examples

    examples = list(dataset_examples(run.dataset))
    return {
        "dataset": run.dataset.name,
        "dataset_version": run.dataset.version,
        "dataset_hash": run.dataset.content_hash,
        "accession_numbers": sorted({e.image.item.accession_number for e in examples}),
        "rights": sorted({e.image.item.rights for e in examples if e.image.item.rights}),
        "base_model": run.base_model.name,
        "base_model_sha256": run.base_model.sha256,
        "training_run": run.pk,
    }


class _TrainingReporter:
    """The training loop's callbacks: loss points and progress to the job, checkpoints and
    validation images to the services (which store them)."""

    def __init__(self, job: Job, run: TrainingRun, config, loss_log: list[dict]) -> None:
        self.job, self.run, self.config = job, run, config
        self.log = loss_log
        self.cancelled = False
        self.last_write = self.last_check = 0.0

    def __call__(self, progress) -> None:
        if progress.event == "step":
            point = {
                "step": progress.step,
                "epoch": progress.epoch,
                "loss": progress.loss,
                "lr": progress.lr,
            }
            self.log = services.loss_log_append(self.log, point)
            self.write_progress(progress, force=progress.step == progress.total_steps)
        elif progress.event == "checkpoint":
            services.training_checkpoint_record(
                run=self.run,
                step=progress.step,
                epoch=progress.epoch,
                path=Path(progress.paths[0]),
                loss_log=self.log,
                validation_loss=progress.validation_loss,
                # the checkpoint's LoRA (diffusers file) follows the resume state
                lora_path=Path(progress.paths[1]) if len(progress.paths) > 1 else None,
            )
            self.write_progress(progress, force=True)
        elif progress.event == "validation":
            services.validation_images_store(
                run=self.run,
                epoch=progress.epoch,
                paths=list(progress.paths),
                prompts=list(self.config.validation_prompts),
                seed=self.config.validation_seed,
            )

    def write_progress(self, progress, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_write < PROGRESS_INTERVAL:
            return
        self.last_write = now
        # A checkpoint event carries no loss or lr: keep showing the last step's.
        last = self.log[-1] if self.log else {}
        loss = progress.loss if progress.loss is not None else last.get("loss")
        lr = progress.lr if progress.lr is not None else last.get("lr")
        data = {
            "step": progress.step,
            "total_steps": progress.total_steps,
            "epoch": progress.epoch,
            "total_epochs": progress.total_epochs,
            "loss": loss,
            "lr": lr,
            "eta_seconds": progress.eta_seconds,
            "loss_curve": loss_curve_points(self.log),
        }
        message = f"step {progress.step} of {progress.total_steps}, epoch {progress.epoch}"
        if loss is not None:
            message += f", loss {loss:.4f}"
        try:
            job_progress(self.job, progress.step / max(1, progress.total_steps), message, data=data)
        except JobCancelled:
            self.cancelled = True  # train_lora stops at its next should_stop()

    def should_stop(self) -> bool:
        if not self.cancelled:
            now = time.monotonic()
            if now - self.last_check >= PROGRESS_INTERVAL:
                self.last_check = now
                self.cancelled = Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists()
        return self.cancelled


def _train(job: Job, run: TrainingRun, tmp: Path) -> dict[str, Any]:
    from generation.diffusion.config import LoraTrainingConfig
    from generation.diffusion.train import FINAL_LOSS_WINDOW, train_lora
    from heritage.selectors import dataset_examples

    config = LoraTrainingConfig.from_dict(run.settings)
    # Workers reach files only through storage: copy the crops into a local folder.
    data_dir = tmp / "data"
    data_dir.mkdir()
    # With masked loss each example carries its annotated regions (crop pixels); the
    # validation split gives the held-out loss of every checkpoint.
    splits: dict[str, list] = {"train": [], "validation": []}
    for split, examples in splits.items():
        for example in dataset_examples(run.dataset, split=split):
            path = data_dir / f"{example.pk}.png"
            path.write_bytes(stored_file_read(example.crop))
            regions = [tuple(r) for r in example.mask_regions] if config.masked_loss else []
            examples.append((str(path), example.caption, regions))
    examples = splits["train"]

    out = tmp / "out"
    latest = run.checkpoints.order_by("-step").first()
    loss_log: list[dict] = []
    if latest is not None:
        # Resume: the newest stored checkpoint goes where train_lora looks for it.
        (out / "checkpoints").mkdir(parents=True)
        target = out / "checkpoints" / f"checkpoint-{latest.step:06d}.safetensors"
        target.write_bytes(stored_file_read(latest.archive))
        loss_log = [p for p in run.loss_log if p.get("step", 0) <= latest.step]
        fraction = latest.step / max(1, _total_steps(job))
        job_progress(job, fraction, f"resuming at step {latest.step}")

    reporter = _TrainingReporter(job, run, config, loss_log)
    provenance = _provenance(run)
    result = train_lora(
        config,
        examples,
        base_model=run.base_model.path,
        output_dir=out,
        callback=reporter,
        should_stop=reporter.should_stop,
        resume=True,
        title=run.name or f"Atelier LoRA {run.pk}",
        license=", ".join(provenance["rights"]),
        provenance=provenance,
        validation_examples=splits["validation"],
    )
    if result.status == "cancelled" or result.files is None:
        services.training_run_loss_log_save(run=run, loss_log=reporter.log)
        raise JobCancelled(f"training run {run.pk} was cancelled")

    # MSE/PSNR/SSIM of the validation images: evaluation registers them (generation.hooks).
    metrics = run_metrics_compute(run, config)
    metrics.update(
        {
            "steps": result.global_step,
            "epochs": result.epochs_completed,
            "seconds_per_step": result.seconds_per_step,
            "device": result.device,
            "precision": result.precision,
            "peak_memory_kind": result.peak_memory_kind,
            "resumed_from_step": result.resumed_from_step,
            # final_loss is the mean of the last steps; the last step's own value beside it.
            "final_loss_last_step": result.final_loss,
            "final_loss_window": min(FINAL_LOSS_WINDOW, len(result.loss_log)),
        }
    )
    run = services.training_run_complete(
        run=run,
        diffusers_path=Path(result.files.diffusers_path),
        kohya_path=Path(result.files.kohya_path) if result.files.kohya_path else None,
        kohya_note=result.files.kohya_note or "",
        loss_log=reporter.log,
        final_loss=result.final_loss_mean,
        peak_memory_bytes=result.peak_memory_bytes,
        metrics=metrics,
    )
    return {
        "run_id": run.pk,
        "final_loss": run.final_loss,
        "steps": result.global_step,
        "lora_sha256": run.lora_diffusers.sha256,
        "kohya_sha256": run.lora_kohya.sha256 if run.lora_kohya_id else "",
        "peak_memory_bytes": run.peak_memory_bytes,
    }


def _total_steps(job: Job) -> int:
    return int((job.data or {}).get("total_steps") or 1)


def _slug(run: TrainingRun) -> str:
    from django.utils.text import slugify

    return slugify(run.name)[:60] or f"run-{run.pk}"


# --- generation --------------------------------------------------------------------------------


@job_handler("generation.generate", queue="gpu", timeout=2 * 60 * 60)
def generate(job: Job) -> dict[str, Any]:
    request = GenerationRequest.objects.select_related(
        "base_model", "training_run__lora_diffusers", "checkpoint__lora", "passage", "item"
    ).get(pk=job.params["request_id"])
    return _generate(job, request)


def lora_local_path(stored) -> Path:
    """A local copy of a stored LoRA file, cached by sha256 (other hosts: via storage)."""
    folder = Path(tempfile.gettempdir()) / "atelier-lora-cache"
    folder.mkdir(exist_ok=True)
    path = folder / f"{stored.sha256}.safetensors"
    if not path.exists():
        from generation.diffusion.pipeline import file_sha256

        partial = path.with_suffix(f".{time.time_ns()}.part")
        partial.write_bytes(stored_file_read(stored))
        if file_sha256(partial) != stored.sha256:
            partial.unlink()
            raise ValueError(f"{stored.name}: checksum mismatch; the stored LoRA is damaged.")
        partial.replace(path)
    return path


def _generate(job: Job, request: GenerationRequest) -> dict[str, Any]:
    from generation import credentials
    from generation.diffusion import inference
    from generation.diffusion.png_metadata import (
        ImageParameters,
        a1111_lora_reference,
        a1111_parameters,
        png_with_metadata,
    )

    base = inference.BaseSpec(path=request.base_model.path, kind=request.base_model.kind)
    lora = None
    lora_name, lora_sha, lora_hash = "", "", ""
    if request.training_run is not None:
        # A named checkpoint's LoRA (an earlier epoch), else the run's final one.
        checkpoint = request.checkpoint if request.checkpoint_id else None
        stored = checkpoint.lora if checkpoint else request.training_run.lora_diffusers
        lora = inference.LoraSpec(path=str(lora_local_path(stored)), sha256=stored.sha256)
        lora_sha = stored.sha256
        # PNG parameters point A1111 at the kohya file (its name and addnet hash); a run
        # without one (see its kohya note) and a checkpoint name the diffusers file's hash.
        kohya = None if checkpoint else request.training_run.lora_kohya
        lora_name, lora_hash = a1111_lora_reference(
            kohya.name
            if kohya
            else f"{_slug(request.training_run)}"
            + (f"-step{checkpoint.step}" if checkpoint else "")
            + ".safetensors",
            stored_file_read(kohya) if kohya else Path(lora.path).read_bytes(),
        )
    render_settings = inference.RenderSettings(
        prompt=request.final_prompt,
        negative_prompt=request.negative_prompt,
        sampler=request.sampler,
        steps=request.steps,
        cfg=request.cfg,
        width=request.width,
        height=request.height,
    )
    conditions = request.conditions
    total = len(request.seeds) * len(conditions)
    versions = inference.software_versions()
    rendered: list[tuple[int, str, Any, bytes]] = []
    last_write = [0.0]
    for seed_index, seed in enumerate(request.seeds):
        for condition_index, condition in enumerate(conditions):
            done = seed_index * len(conditions) + condition_index

            def on_step(step: int, steps: int, done: int = done, condition: str = condition):
                now = time.monotonic()
                if step < steps and now - last_write[0] < PROGRESS_INTERVAL:
                    return
                last_write[0] = now
                job_progress(
                    job,
                    (done + step / steps) / total,
                    f"image {done + 1} of {total} ({condition}), step {step} of {steps}",
                    data={"image": done + 1, "images": total, "step": step, "steps": steps},
                )

            with_lora = condition == "lora"
            image = inference.render_with_cache(
                inference.CACHE,
                base,
                render_settings,
                seed,
                lora=lora if with_lora else None,
                lora_scale=request.lora_scale,
                on_step=on_step,
            )
            parameters = a1111_parameters(
                ImageParameters(
                    prompt=request.final_prompt,
                    negative_prompt=request.negative_prompt,
                    steps=request.steps,
                    sampler=request.sampler,
                    cfg=request.cfg,
                    seed=seed,
                    width=image.width,
                    height=image.height,
                    model_name=request.base_model.name,
                    model_sha256=request.base_model.sha256,
                    lora_name=lora_name if with_lora else "",
                    lora_hash=lora_hash if with_lora else "",
                    lora_scale=request.lora_scale,
                )
            )
            provenance = {
                "label": GeneratedImage.AI_LABEL,
                "ai_generated": True,
                "request_id": request.pk,
                "condition": condition,
                "seed": seed,
                "prompt": request.final_prompt,
                "negative_prompt": request.negative_prompt,
                "sampler": request.sampler,
                "steps": request.steps,
                "cfg": request.cfg,
                "size": [image.width, image.height],
                "base_model": {
                    "name": request.base_model.name,
                    "sha256": request.base_model.sha256,
                },
                "lora": (
                    {
                        "training_run": request.training_run_id,
                        "sha256": lora_sha,
                        "scale": request.lora_scale,
                        "trigger_token": request.training_run.trigger_token,
                    }
                    if with_lora
                    else None
                ),
                "passage_id": request.passage_id,
                "item_id": request.item_id,
                "organisation": settings.ATELIER_ORGANISATION,
                "software": {"atelier": "Atelier", **versions},
            }
            data = png_with_metadata(image, parameters=parameters, provenance=provenance)
            # Content credentials (C2PA + XMP) before storing: chunks only, same pixels.
            data = credentials.generated_png_sign(
                png=data, request=request, condition=condition, seed=seed
            )
            rendered.append((seed, condition, image, data))

    sheet_png = None
    if len(rendered) > 1:
        by_seed: dict[int, dict[str, Any]] = {}
        for seed, condition, image, _ in rendered:
            by_seed.setdefault(seed, {})[condition] = image
        sheet = inference.contact_sheet(list(by_seed.items()), title=request.final_prompt[:60])
        buffer = io.BytesIO()
        sheet.save(buffer, format="PNG")
        sheet_png = credentials.contact_sheet_sign(png=buffer.getvalue(), request=request)
    services.generated_images_store(
        request=request,
        rendered=[
            (seed, cond, image.width, image.height, data) for seed, cond, image, data in rendered
        ],
        contact_sheet_png=sheet_png,
    )
    return {
        "request_id": request.pk,
        "images": len(rendered),
        "cache": {
            "base_loads": inference.CACHE.base_loads,
            "lora_loads": inference.CACHE.lora_loads,
        },
    }
