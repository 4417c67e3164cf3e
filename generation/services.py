"""Writes of the generation app: base models, training runs and sweeps, generation requests.

Everything a curator asks for is checked here, before anything is queued: a refused setting
raises ``django.core.exceptions.ValidationError`` (the API turns it into a 400 with the
messages) and leaves no row and no job. The web process never imports torch: base models are
checked in a child process, and prompt lengths with the (torch-free) CLIP tokenizer.
"""

from __future__ import annotations

import itertools
import json
import math
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from archives.services import atomic_with_files, stored_file_save
from core.errors import Conflict
from generation.diffusion import inference
from generation.diffusion.config import (
    PRESETS,
    LoraTrainingConfig,
    apply_trigger,
    prediction_type_error,
    trigger_token_error,
)
from generation.diffusion.pipeline import TOKENIZER_DIR
from generation.hooks import ApprovalCheckPending, ApprovalQueued, approval_checks_run
from generation.models import (
    BaseModel,
    GeneratedImage,
    GenerationRequest,
    JobStatus,
    Sweep,
    TrainingCheckpoint,
    TrainingRun,
    ValidationImage,
)
from jobs.models import Job
from jobs.queue import job_cancel, job_enqueue

LOSS_LOG_MAX_POINTS = 2000  # past this, the loss log merges neighbours (see loss_log_append)
MAX_SWEEP_CELLS = 16
BASE_MODEL_CHECK_TIMEOUT = 600


def _save(instance) -> None:
    instance.full_clean()
    instance.save()


# --- base models -------------------------------------------------------------------------------


def base_model_inspect(path: str) -> dict[str, Any]:
    """Check a base model in a child process: kind, sha256, resolution; ValidationError if bad.

    The cheap checks (pickles, missing components) run here first, without torch.
    """
    from generation.diffusion.pipeline import BaseModelError, base_model_kind

    try:
        base_model_kind(path)
    except BaseModelError as exc:
        raise ValidationError({"path": str(exc)}) from None
    code = (
        "import sys; from generation.diffusion.inference import check_base_model_cli; "
        "check_base_model_cli(sys.argv[1])"
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            capture_output=True,
            text=True,
            timeout=BASE_MODEL_CHECK_TIMEOUT,
            cwd=settings.BASE_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ValidationError(
            {"path": f"Loading the model took over {BASE_MODEL_CHECK_TIMEOUT} s; not registered."}
        ) from None
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ValidationError({"path": f"The model could not be loaded: {tail[0]}"})
    report = json.loads(lines[-1])
    if "error" in report:
        raise ValidationError({"path": report["error"]})
    return report


def base_model_register(
    *, name: str, path: str, description: str = "", make_default: bool = False, user=None
) -> BaseModel:
    """Register a local diffusers folder or SD 1.x .safetensors file: the cheap checks here
    (pickles, missing components, truncated file: a ValidationError, no row), then the row,
    "registering" until its ``generation.base_model_register`` job has loaded it once
    (``base_model_inspect``, up to BASE_MODEL_CHECK_TIMEOUT s: never in a request)."""
    from generation.diffusion.pipeline import BaseModelError, base_model_kind

    path = str(Path(path).expanduser())
    try:
        kind = base_model_kind(path)
    except BaseModelError as exc:
        raise ValidationError({"path": str(exc)}) from None
    with transaction.atomic():
        # A failed registration keeps its row (and message) until the name is tried again.
        BaseModel.objects.filter(name=name, job__status=Job.Status.FAILED).delete()
        if BaseModel.objects.filter(name=name).exists():
            raise ValidationError({"name": f"A base model named {name!r} exists already."})
        model = BaseModel(name=name, path=path, kind=kind, description=description)
        _save(model)
        model.job = job_enqueue(
            kind="generation.base_model_register",
            params={"base_model_id": model.pk, "make_default": bool(make_default)},
            user=user,
        )
        model.save(update_fields=["job"])
    return model


def base_model_registration_complete(
    *, model: BaseModel, report: dict[str, Any], make_default: bool = False
) -> BaseModel:
    """What loading the model found (kind, sha256, resolution); the default when asked, or
    when there is none yet."""
    with transaction.atomic():
        others = BaseModel.objects.exclude(pk=model.pk)
        if make_default:
            others.filter(is_default=True).update(is_default=False)
        model.kind = report["kind"]
        model.sha256 = report["sha256"]
        model.resolution = report["resolution"]
        model.is_default = make_default or not others.filter(is_default=True).exists()
        _save(model)
    return model


def _check_base_model_ready(base_model: BaseModel) -> None:
    state = base_model.state
    if state == BaseModel.State.REGISTERING:
        raise ValidationError(
            {
                "base_model": f"{base_model.name} is still being registered "
                f"(job {base_model.job_id})."
            }
        )
    if state == BaseModel.State.FAILED:
        raise ValidationError(
            {
                "base_model": f"{base_model.name} could not be registered: "
                f"{base_model.registration_error}"
            }
        )


def base_model_default() -> BaseModel:
    """The default base model; the shipped demo model is registered on first use."""
    model = BaseModel.objects.filter(is_default=True).first()
    if model is not None:
        return model
    demo = Path(settings.ATELIER_DEMO_MODEL_DIR)
    if not (demo / "model_index.json").is_file():
        raise ValidationError(
            {
                "base_model": "No base model is registered and the demo model is missing; "
                "register one first."
            }
        )
    from generation.diffusion.pipeline import base_model_sha256

    resolution = _demo_resolution(demo)
    with transaction.atomic():
        model, _ = BaseModel.objects.get_or_create(
            name="Atelier demo model",
            defaults={
                "path": str(demo),
                "kind": BaseModel.Kind.DIFFUSERS,
                "sha256": base_model_sha256(demo),
                "resolution": resolution,
                "description": (
                    "Tiny SD-format model shipped with Atelier for the demo and tests, trained "
                    "on procedural images only: it cannot learn real paintings (use SD 1.5 on "
                    "a GPU for that)."
                ),
            },
        )
        if not BaseModel.objects.filter(is_default=True).exists():
            model.is_default = True
            model.save(update_fields=["is_default"])
    return model


def _demo_resolution(folder: Path) -> int:
    """Native size from the configs (no weights loaded): U-Net sample size x VAE factor."""
    unet = json.loads((folder / "unet" / "config.json").read_text())
    vae = json.loads((folder / "vae" / "config.json").read_text())
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)


# --- training runs -----------------------------------------------------------------------------


def training_config_resolve(
    *, dataset, preset: str = "", settings_: dict[str, Any] | None = None
) -> LoraTrainingConfig:
    """Preset settings, then the dataset's resolution and trigger, then the curator's changes.

    The trigger is always the dataset's: its captions are written with it, so a preset's
    trigger (gazetteer-001's "[U]") never replaces it and a different one is refused.
    A ValidationError lists every refused setting (unknown names, out-of-range values).
    """
    overrides = dict(settings_ or {})
    if preset and preset not in PRESETS:
        raise ValidationError({"preset": f"Unknown preset {preset!r}; use one of {list(PRESETS)}."})
    base = dict(PRESETS[preset].settings) if preset else {}
    # The crops were made at the dataset's resolution; train at it unless told otherwise.
    base["resolution"] = dataset.resolution
    trigger_error = trigger_token_error(dataset.trigger_token)
    if trigger_error:
        raise ValidationError(
            {"dataset": f"{dataset}: {trigger_error} Change the dataset's trigger first."}
        )
    base["trigger_token"] = dataset.trigger_token
    # The dataset's build options: its crops are bucketed (or square), its regions masked.
    base["bucketing"] = dataset.bucketing
    base["masked_loss"] = dataset.masked_loss
    base["unmasked_weight"] = dataset.unmasked_weight
    if "trigger_token" in overrides and overrides["trigger_token"] != dataset.trigger_token:
        raise ValidationError(
            {
                "settings": [
                    f"trigger_token {overrides['trigger_token']!r} differs from the dataset's "
                    f"{dataset.trigger_token!r}, which its captions are written with: leave it "
                    "out, or change the dataset's trigger."
                ]
            }
        )
    try:
        config = LoraTrainingConfig.from_dict({**base, **overrides})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"settings": str(exc)}) from None
    errors = config.validate()
    if errors:
        raise ValidationError({"settings": errors})
    return config


def training_preflight(
    config: LoraTrainingConfig, base_model: BaseModel | None = None
) -> tuple[int, str]:
    """(estimated GPU bytes, what the estimate says) for this base model; ValidationError only
    when the estimate clearly exceeds the target worker's GPU (check_fits warns between 1x and
    its refuse factor: the warning is kept on the run and shown before and after queueing)."""
    from generation.diffusion.memory import check_fits, model_sizes

    sizes = None
    if base_model is not None:
        try:  # safetensors headers only: cheap, and safe in the web process
            sizes = model_sizes(base_model.path)
        except (OSError, ValueError, KeyError):
            sizes = None  # unreadable headers: fall back to SD 1.5's sizes (the larger guess)
    gpu_gib = float(settings.ATELIER_WORKER_GPU_GIB)
    fits, estimate, message = check_fits(config, gpu_gib if gpu_gib > 0 else 1e9, sizes)
    if gpu_gib > 0 and not fits:
        raise ValidationError({"settings": [message]})
    if gpu_gib <= 0:
        message = "No worker GPU size is set (ATELIER_WORKER_GPU_GIB): nothing was checked."
    return estimate, message


def training_device_check(config: LoraTrainingConfig, dataset) -> list[str]:
    """Settings that cannot apply as asked, checked before queueing and kept on the run as
    warnings (its memory note, shown in the API answer and on the run page): a batch larger
    than the training split (every step then trains on the whole split, fewer images than
    asked), half precision on a CPU worker (ATELIER_WORKER_GPU_GIB = 0: the loop trains in
    float32 there)."""
    from heritage.selectors import dataset_examples

    notes = []
    n_train = dataset_examples(dataset, split="train").count()
    if config.train_batch_size > n_train:
        notes.append(
            f"Warning: train_batch_size {config.train_batch_size} is larger than the "
            f"{n_train} training examples of {dataset}; each step uses all {n_train}."
        )
    if config.mixed_precision != "no" and float(settings.ATELIER_WORKER_GPU_GIB) <= 0:
        notes.append(
            f"Warning: mixed_precision {config.mixed_precision} applies on a GPU only; the "
            "worker is a CPU (ATELIER_WORKER_GPU_GIB is 0), so this run trains in float32."
        )
    return notes


def _check_dataset(dataset) -> None:
    from heritage.selectors import dataset_examples

    if not dataset.frozen:
        raise ValidationError(
            {"dataset": f"{dataset} is not frozen: freeze it first so the run can be reproduced."}
        )
    train = dataset_examples(dataset, split="train")
    if not train.exists():
        raise ValidationError({"dataset": f"{dataset} has no training examples."})
    if train.filter(crop__isnull=True).exists():
        raise ValidationError({"dataset": f"{dataset} has examples without a training crop."})


def _check_prediction_type(base_model: BaseModel) -> None:
    """Refuse a base model whose U-Net predicts something training cannot target (read from
    its scheduler config; single files load with SD 1.5's epsilon config)."""
    config = Path(base_model.path) / "scheduler" / "scheduler_config.json"
    if not config.is_file():
        return
    prediction_type = json.loads(config.read_text(encoding="utf-8")).get("prediction_type")
    error = prediction_type_error(prediction_type or "epsilon")
    if error:
        raise ValidationError({"base_model": f"{base_model.name}: {error}"})


def training_run_create(
    *,
    dataset,
    base_model: BaseModel | None = None,
    preset: str = "",
    settings: dict[str, Any] | None = None,
    name: str = "",
    user=None,
    sweep: Sweep | None = None,
) -> TrainingRun:
    """Check everything, then create the run and queue its ``generation.train`` job."""
    _check_dataset(dataset)
    base_model = base_model or base_model_default()
    _check_base_model_ready(base_model)
    _check_prediction_type(base_model)
    settings = dict(settings or {})
    if "validation_prompts" not in settings:
        # Validation images (and their metrics) default to the validation split's captions.
        from heritage.selectors import dataset_examples

        captions = [e.caption for e in dataset_examples(dataset, split="validation")[:4]]
        if captions:
            settings["validation_prompts"] = captions
    config = training_config_resolve(dataset=dataset, preset=preset, settings_=settings)
    estimate, memory_note = training_preflight(config, base_model)
    device_notes = training_device_check(config, dataset)
    if device_notes:
        memory_note = " ".join([memory_note, *device_notes])
    with transaction.atomic():
        run = TrainingRun(
            name=name or f"{dataset.name} v{dataset.version} · {preset or 'custom'}",
            dataset=dataset,
            base_model=base_model,
            preset=preset,
            settings=config.to_dict(),
            trigger_token=config.trigger_token,
            estimated_memory_bytes=estimate,
            memory_note=memory_note[:1000],
            sweep=sweep,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        _save(run)
        run.job = job_enqueue(kind="generation.train", params={"run_id": run.pk}, user=user)
        run.save(update_fields=["job"])
    return run


def training_run_cancel(*, run: TrainingRun) -> TrainingRun:
    """Cancel the run's job (the run reads its status from the job)."""
    if run.job is None:
        raise Conflict("this run has no job")
    run.job = job_cancel(job=run.job)
    return run


# --- what training and generation jobs store (generation.jobs calls these) -----------------


def training_checkpoint_record(
    *,
    run: TrainingRun,
    step: int,
    epoch: int,
    path: Path,
    loss_log: list[dict],
    validation_loss: float | None = None,
    lora_path: Path | None = None,
) -> TrainingCheckpoint:
    """Store a checkpoint file the training loop wrote (once per step) and the loss so far,
    with its held-out loss and its LoRA file (kept for download and generation).

    Stored as soon as it is written: a re-queued job on any worker resumes from the newest.
    """
    with atomic_with_files():
        checkpoint = run.checkpoints.filter(step=step).first()
        if checkpoint is None:
            checkpoint = TrainingCheckpoint(
                run=run,
                epoch=epoch,
                step=step,
                archive=stored_file_save(
                    name=f"generation/runs/{run.pk}/checkpoints/{path.name}",
                    content=path.read_bytes(),
                    content_type="application/octet-stream",
                ),
                loss=loss_log[-1].get("loss") if loss_log else None,
                validation_loss=validation_loss,
                lora=(
                    stored_file_save(
                        name=f"generation/runs/{run.pk}/checkpoints/lora-{step:06d}.safetensors",
                        content=lora_path.read_bytes(),
                        content_type="application/octet-stream",
                    )
                    if lora_path is not None
                    else None
                ),
            )
            _save(checkpoint)
        training_run_loss_log_save(run=run, loss_log=loss_log)
    return checkpoint


def training_run_loss_log_save(*, run: TrainingRun, loss_log: list[dict]) -> None:
    """Keep the loss log so far (a cancelled or resumed run shows its curve)."""
    run.loss_log = [dict(p) for p in loss_log]
    TrainingRun.objects.filter(pk=run.pk).update(loss_log=run.loss_log)


def validation_images_store(
    *, run: TrainingRun, epoch: int, paths: list[str], prompts: list[str], seed: int
) -> list[ValidationImage]:
    """Store the validation PNGs of one validation event, each once.

    ``validation/base/NN.png`` (the base model, once) and ``validation/step-N/NN.png`` (the LoRA
    at step N); NN is the prompt's index, drawn with seed ``seed + NN``.
    """
    from generation.credentials import validation_png_sign

    stored = {(v.step, v.condition, v.seed) for v in run.validation_images.all()}
    rows = []
    with atomic_with_files():
        for name in paths:
            path = Path(name)
            condition = "base" if path.parent.name == "base" else "lora"
            step = 0 if condition == "base" else int(path.parent.name.split("-")[-1])
            index = int(path.stem)
            if (step, condition, seed + index) in stored:
                continue  # stored before a resume
            row = ValidationImage(
                run=run,
                epoch=0 if condition == "base" else epoch,
                step=step,
                condition=condition,
                prompt=prompts[index],
                seed=seed + index,
                file=stored_file_save(
                    name=f"generation/runs/{run.pk}/validation/{path.parent.name}/{path.name}",
                    # Signed like every generated image (issue 22): curators download these.
                    content=validation_png_sign(
                        png=path.read_bytes(),
                        run=run,
                        condition=condition,
                        step=step,
                        seed=seed + index,
                        prompt=prompts[index],
                    ),
                    content_type="image/png",
                ),
            )
            row.full_clean()
            rows.append(row)
            stored.add((step, condition, seed + index))
        ValidationImage.objects.bulk_create(rows)
    return rows


def training_run_complete(
    *,
    run: TrainingRun,
    diffusers_path: Path,
    kohya_path: Path | None,
    kohya_note: str,
    loss_log: list[dict],
    final_loss: float | None,
    peak_memory_bytes: int | None,
    metrics: dict[str, Any],
) -> TrainingRun:
    """Store the finished run's LoRA files, loss log and metrics in one transaction (the job
    then succeeds; the run reads that from its job)."""
    metrics = dict(metrics)
    with atomic_with_files():
        run.lora_diffusers = stored_file_save(
            name=f"generation/runs/{run.pk}/lora/pytorch_lora_weights.safetensors",
            content=diffusers_path.read_bytes(),
            content_type="application/octet-stream",
        )
        if kohya_path is not None:  # named by its ss_output_name: A1111's <lora:NAME:1>
            run.lora_kohya = stored_file_save(
                name=f"generation/runs/{run.pk}/lora/{kohya_path.name}",
                content=kohya_path.read_bytes(),
                content_type="application/octet-stream",
            )
        else:  # layers kohya cannot hold: no file, and the run page says why
            metrics["kohya_note"] = kohya_note
        run.loss_log = [dict(p) for p in loss_log]
        run.final_loss = final_loss
        run.peak_memory_bytes = int(peak_memory_bytes or 0) or None
        run.metrics = metrics
        run.full_clean()
        run.save(
            update_fields=[
                "lora_diffusers",
                "lora_kohya",
                "loss_log",
                "final_loss",
                "peak_memory_bytes",
                "metrics",
            ]
        )
    return run


def generated_images_store(
    *,
    request: GenerationRequest,
    rendered: list[tuple[int, str, int, int, bytes]],
    contact_sheet_png: bytes | None = None,
) -> list[GeneratedImage]:
    """Store a request's PNGs ``(seed, condition, width, height, png)`` and its contact sheet
    in one transaction: a failure or cancel before this leaves no half request."""
    with atomic_with_files():
        rows = []
        for seed, condition, width, height, data in rendered:
            row = GeneratedImage(
                request=request,
                file=stored_file_save(
                    name=f"generation/requests/{request.pk}/{seed}-{condition}.png",
                    content=data,
                    content_type="image/png",
                ),
                seed=seed,
                condition=condition,
                prompt=request.final_prompt,
                width=width,
                height=height,
                item=request.item,
                passage=request.passage,
            )
            row.full_clean()
            rows.append(row)
        GeneratedImage.objects.bulk_create(rows)
        if contact_sheet_png is not None:
            request.contact_sheet = stored_file_save(
                name=f"generation/requests/{request.pk}/contact-sheet.png",
                content=contact_sheet_png,
                content_type="image/png",
            )
            request.save(update_fields=["contact_sheet"])
    return rows


def _merge_loss_points(a: dict, b: dict) -> dict:
    """One point for two neighbours: ``b``'s step, epoch and lr, the mean loss weighted by how
    many steps each already stands for (``n``, 1 when absent)."""
    na, nb = a.get("n", 1), b.get("n", 1)
    if a.get("loss") is None or b.get("loss") is None:
        loss = b.get("loss") if a.get("loss") is None else a.get("loss")
    else:
        loss = (a["loss"] * na + b["loss"] * nb) / (na + nb)
    return {**b, "loss": loss, "n": na + nb}


def loss_log_append(log: list[dict], point: dict, limit: int = LOSS_LOG_MAX_POINTS) -> list[dict]:
    """Add a point; past ``limit`` points, neighbours are merged in pairs into their mean (a
    kept step would be as likely a spike of the noisy per-step loss as not)."""
    log = [*log, point]
    if len(log) > limit:
        older = log[:-1]
        merged = [_merge_loss_points(a, b) for a, b in zip(older[::2], older[1::2], strict=False)]
        if len(older) % 2:
            merged.append(older[-1])
        log = [*merged, point]
    return log


def sweep_create(
    *,
    name: str,
    dataset,
    base_model: BaseModel | None = None,
    preset: str = "",
    settings: dict[str, Any] | None = None,
    grid: dict[str, list[Any]],
    user=None,
) -> Sweep:
    """One run per cell of ``grid`` (e.g. train_batch_size x unet_lr); all checked first."""
    if not isinstance(grid, dict) or not grid:
        raise ValidationError({"grid": 'Give a grid like {"train_batch_size": [1, 2]}.'})
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValidationError({"grid": f"{key}: give a non-empty list of values."})
    cells = [dict(zip(grid, combo, strict=True)) for combo in itertools.product(*grid.values())]
    if len(cells) > MAX_SWEEP_CELLS:
        raise ValidationError(
            {"grid": f"The grid has {len(cells)} cells; at most {MAX_SWEEP_CELLS} runs a sweep."}
        )
    _check_dataset(dataset)
    base_model = base_model or base_model_default()
    _check_base_model_ready(base_model)
    _check_prediction_type(base_model)
    errors: list[str] = []
    for cell in cells:
        try:
            config = training_config_resolve(
                dataset=dataset, preset=preset, settings_={**(settings or {}), **cell}
            )
            training_preflight(config, base_model)
        except ValidationError as exc:
            for message in exc.messages:
                errors.append(f"{_cell_label(cell)}: {message}")
    if errors:
        raise ValidationError({"grid": errors})
    with transaction.atomic():
        sweep = Sweep(
            name=name,
            dataset=dataset,
            base_model=base_model,
            preset=preset,
            settings=settings or {},
            grid=grid,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        _save(sweep)
        for cell in cells:
            training_run_create(
                dataset=dataset,
                base_model=base_model,
                preset=preset,
                settings={**(settings or {}), **cell},
                name=f"{name} · {_cell_label(cell)}",
                user=user,
                sweep=sweep,
            )
    return sweep


def _cell_label(cell: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in cell.items())


# --- generation --------------------------------------------------------------------------------


def _int_field(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise ValidationError({name: f"{name} must be a whole number (got {value!r})."})
    return int(value)


def generation_request_create(
    *,
    prompt: str = "",
    negative_prompt: str = "",
    passage=None,
    item=None,
    base_model: BaseModel | None = None,
    training_run: TrainingRun | None = None,
    checkpoint: TrainingCheckpoint | None = None,
    lora_scale: float = 1.0,
    sampler: str = GenerationRequest.Sampler.DDIM,
    steps: int = 35,
    cfg: float = 7.0,
    width: int | None = None,
    height: int | None = None,
    shape: str = "",
    images: int | None = None,
    seeds: list[int] | None = None,
    compare_with_base: bool = False,
    user=None,
) -> GenerationRequest:
    """Check the request, draw missing seeds, and queue a ``generation.generate`` job.

    ``checkpoint``: one of the run's checkpoints whose LoRA is used instead of the final one
    (compare epochs). ``shape``: a preset of ``inference.SHAPES`` (square, hanging scroll,
    handscroll) sized from the base model's native resolution, instead of width and height.
    """
    errors: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if checkpoint is not None:
        training_run = training_run or checkpoint.run
        if checkpoint.run_id != training_run.pk:
            refuse("checkpoint", f"Checkpoint {checkpoint.pk} belongs to another training run.")
        elif checkpoint.lora_id is None:
            refuse("checkpoint", f"Checkpoint at step {checkpoint.step} kept no LoRA file.")

    prompt = (prompt or "").strip()
    if not prompt and passage is not None:
        prompt = (passage.approved_prompt or "").strip()
        if not prompt:
            refuse("passage", "This passage has no approved prompt yet: approve one or type one.")
    if training_run is not None:
        if training_run.status != JobStatus.SUCCEEDED or training_run.lora_diffusers_id is None:
            refuse("training_run", "That training run has not finished with a LoRA file.")
        base_model = base_model or training_run.base_model
    elif compare_with_base:
        refuse("compare_with_base", "Comparing with the base model needs a LoRA (training run).")
    if base_model is None:
        base_model = base_model_default()
    try:
        _check_base_model_ready(base_model)
    except ValidationError as exc:
        raise ValidationError({**errors, **exc.message_dict}) from None
    if training_run is not None and training_run.base_model_id != base_model.pk:
        refuse("training_run", "That LoRA was trained on another base model.")
    if (
        isinstance(lora_scale, bool)
        or not isinstance(lora_scale, int | float)
        or not math.isfinite(lora_scale)
        or not -2 <= lora_scale <= 2
    ):
        refuse("lora_scale", f"The LoRA scale must be between -2 and 2 (got {lora_scale!r}).")
    if shape:
        if shape not in inference.SHAPES:
            refuse("shape", f"Unknown shape {shape!r}; use one of {', '.join(inference.SHAPES)}.")
        elif width is not None or height is not None:
            refuse("shape", "Give a shape or a width and height, not both.")
        else:
            width, height = inference.shape_size(shape, base_model.resolution)
    width = base_model.resolution if width is None else _int_field(width, "width")
    height = base_model.resolution if height is None else _int_field(height, "height")
    steps = _int_field(steps, "steps")
    if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not math.isfinite(cfg):
        refuse("cfg", f"CFG scale must be a number (got {cfg!r}).")
        cfg = 7.0

    if seeds is not None:
        if not isinstance(seeds, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**32 for s in seeds
        ):
            refuse("seeds", "Seeds must be a list of whole numbers from 0 to 4294967295.")
            seeds = []
        elif len(set(seeds)) != len(seeds):
            refuse("seeds", "Each seed may appear once.")
        if images is not None and seeds and images != len(seeds):
            refuse("images", f"{images} images asked for but {len(seeds)} seeds given.")
        count = len(seeds)
    else:
        count = 1 if images is None else _int_field(images, "images")
        # Random seeds are drawn now and stored, so every image can be made again.
        seeds = [secrets.randbelow(2**32) for _ in range(max(0, min(count, 100)))]

    trigger = training_run.trigger_token if training_run is not None else ""
    final_prompt = apply_trigger(prompt, trigger) if prompt else ""
    render = inference.RenderSettings(
        prompt=final_prompt,
        negative_prompt=negative_prompt or "",
        sampler=sampler,
        steps=steps,
        cfg=float(cfg),
        width=width,
        height=height,
    )
    folder = Path(base_model.path) / "tokenizer"
    if not folder.is_dir():  # a single-file model: SD 1.x's CLIP tokenizer, committed
        folder = TOKENIZER_DIR
    for message in inference.check_render_settings(
        render, images=count, tokenizer_dir=folder, sample_size=base_model.resolution
    ):
        refuse("settings", message)
    if errors:
        raise ValidationError(errors)

    with transaction.atomic():
        request = GenerationRequest(
            prompt=prompt,
            final_prompt=final_prompt,
            negative_prompt=negative_prompt or "",
            passage=passage,
            item=item,
            base_model=base_model,
            training_run=training_run,
            checkpoint=checkpoint,
            lora_scale=float(lora_scale),
            sampler=sampler,
            steps=steps,
            cfg=float(cfg),
            width=width,
            height=height,
            seeds=seeds,
            compare_with_base=compare_with_base,
            created_by=user if getattr(user, "is_authenticated", False) else None,
        )
        _save(request)
        request.job = job_enqueue(
            kind="generation.generate", params={"request_id": request.pk}, user=user
        )
        request.save(update_fields=["job"])
    return request


def generated_image_approve(
    *, image: GeneratedImage, approved: bool = True, user=None
) -> GeneratedImage:
    """A curator's decision: the kiosk shows approved images (labelled AI-generated).

    Approving is refused (ValidationError, the image unchanged) while the image is a near copy
    of a training image, and while an open expert study rates it blind: on the kiosk it would
    be shown with its condition. An image not yet compared with the training images raises
    ``ApprovalQueued``: its job compares, then approves or fails with the refusal.
    Withdrawing is always allowed.
    """
    if approved and image.condition != GeneratedImage.Condition.LORA:
        # The kiosk labels approved images "made by a model trained on this collection": a
        # base-model image is not, so it never goes there (issue 17).
        raise ValidationError(
            f"Image {image.pk} was made by the base model, not by a LoRA trained on the "
            "collection: only LoRA images can be approved for the kiosk."
        )
    if approved:
        # The checks evaluation registers (generation.hooks): not rated blind in an open
        # study, not a near copy. A check whose slow part has not run (the memorisation
        # SSIMs) asks for its job: queued here, it runs the check and approves.
        try:
            approval_checks_run(image, locked=False)
        except ApprovalCheckPending as pending:
            raise ApprovalQueued(
                _approval_job(image=image, job_kind=pending.job_kind, user=user)
            ) from None
    with transaction.atomic():
        locked = GeneratedImage.objects.select_for_update().get(pk=image.pk)
        if approved:
            # Again under the row lock: a study reopening (or being created) at this moment
            # locks this row too, so it either sees this approval or is seen here.
            approval_checks_run(locked, locked=True)
        locked.approved = approved
        locked.approved_by = user if approved and getattr(user, "is_authenticated", False) else None
        locked.approved_at = timezone.now() if approved else None
        locked.save(update_fields=["approved", "approved_by", "approved_at"])
    image.approved, image.approved_by, image.approved_at = (
        locked.approved,
        locked.approved_by,
        locked.approved_at,
    )
    return image


def _approval_job(*, image: GeneratedImage, job_kind: str, user=None) -> Job:
    """The image's pending approval job, or a new one."""
    with transaction.atomic():
        pending = Job.objects.filter(
            kind=job_kind,
            params__image_id=image.pk,
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
        ).first()
        if pending is not None:
            return pending
        user_id = user.pk if getattr(user, "is_authenticated", False) else None
        return job_enqueue(
            kind=job_kind, params={"image_id": image.pk, "user_id": user_id}, user=user
        )


def passage_prompt_draft_request(*, passage, user=None) -> Job:
    """Queue ``generation.prompt_draft`` for the passage (the LLM call is a job: it may take
    as long as ATELIER_LLM_TIMEOUT). Asked again while one is queued or running: that job.

    Raises ``PromptDraftError`` at once when drafting is off (no endpoint configured).
    """
    from generation.diffusion.prompting import PromptDraftError

    if not settings.ATELIER_LLM_URL:
        raise PromptDraftError("Prompt drafting is off: no language-model endpoint is configured.")
    with transaction.atomic():
        pending = prompt_draft_job_pending(passage=passage)
        if pending is not None:
            return pending
        return job_enqueue(
            kind="generation.prompt_draft", params={"passage_id": passage.pk}, user=user
        )


def prompt_draft_job_pending(*, passage) -> Job | None:
    """The passage's drafting job while it is queued or running (the passage is "drafting")."""
    return (
        Job.objects.filter(
            kind="generation.prompt_draft",
            params__passage_id=passage.pk,
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING],
        )
        .order_by("-created_at")
        .first()
    )


def passage_prompt_draft(*, passage) -> str:
    """Ask the configured LLM for a prompt draft and keep it on the passage (not approved).

    Raises ``PromptDraftError`` with a message for the curator when drafting is off or fails
    (``PromptDraftRefused`` when the model declined). Runs in the ``generation.prompt_draft``
    job, never in a request.
    """
    from generation.diffusion.prompting import LlmEndpoint, draft_prompt, passage_message
    from heritage.services import passage_update

    endpoint = LlmEndpoint(
        url=settings.ATELIER_LLM_URL,
        model=settings.ATELIER_LLM_MODEL,
        key=settings.ATELIER_LLM_KEY,
        timeout=float(settings.ATELIER_LLM_TIMEOUT),
    )
    draft = draft_prompt(
        endpoint,
        passage_message(
            passage.original_text, passage.modern_paraphrase, passage.english_translation
        ),
    )
    passage_update(passage=passage, prompt_draft=draft.text)
    return draft.text
