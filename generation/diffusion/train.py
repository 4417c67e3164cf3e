"""The LoRA training loop: one function, in the order of diffusers'
``examples/text_to_image/train_text_to_image_lora.py`` (seed, load, freeze, add adapter,
optimizer, data, loop, checkpoint, save, validate), without accelerate or argparse.

Determinism and resume. Every random draw of the loop (data order, flips, caption dropout,
VAE posterior sample, noise, noise offset, timesteps) comes from one CPU ``torch.Generator``
seeded with ``config.seed``; the data order of epoch ``e`` is a permutation seeded with
``seed + e``. Checkpoints are written at the end of an epoch (every
``checkpoint_every_epochs``, and at the end) as ONE safetensors file: LoRA parameters,
optimizer state, the generator's and torch's RNG states (uint8 tensors), python/numpy RNG
states (JSON), step, epoch, loss log. No pickle anywhere. Resuming restores all of it and
continues with the next epoch, so on CPU a resumed run ends with the same weights, bit for
bit, as an uninterrupted one.

Latent caching: the VAE encodes each image once (and its mirror image when ``random_flip``);
we cache the posterior's mean and std and draw ``mean + std * noise`` from the seeded
generator at every step, exactly what the uncached path does after encoding, so caching
changes speed, not the training distribution. Text embeddings are cached per distinct caption
(plus the empty caption for caption dropout) when the text encoder is frozen.

Aspect-ratio buckets (buckets.py, kohya's scheme): each image trains at the bucket nearest
its aspect ratio, resized to cover it with the least crop. An epoch is the seeded permutation
of all examples, split by bucket into batches (each batch from one bucket), the batches in the
order their first example comes in the permutation: one bucket gives exactly the old order.
Latents are cached per example at its bucket's shape. Examples may carry regions (x, y, w, h
in the image's pixels): with ``masked_loss`` the loss outside them is weighted by
``unmasked_weight`` (the region coverage, downsampled to latent cells).

Held-out loss: with ``validation_examples``, every checkpoint also records the denoising loss
on them at fixed timesteps with fixed noise (``HELD_OUT_TIMESTEPS``, noise seeded by the run's
seed), so checkpoints and runs compare; each checkpoint also writes its LoRA files
(``checkpoints/lora-<step>/``) so any epoch can be used for generation.

Mixed precision applies on CUDA only (frozen weights in fp16/bf16, LoRA parameters in fp32,
autocast, a GradScaler for fp16); on CPU the run is float32 whatever the setting says.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from generation.diffusion.buckets import (
    Bucket,
    BucketChoice,
    BucketError,
    boxes_in_crop,
    choose_bucket,
    dominant_bucket,
    mask_from_boxes,
    resize_to_bucket,
)
from generation.diffusion.config import (
    TEXT_ENCODER_MODULES,
    LoraTrainingConfig,
    apply_trigger,
    prediction_type_error,
)
from generation.diffusion.lora_files import LoraFiles, build_metadata, save_lora_files
from generation.diffusion.memory import PeakMemory

CHECKPOINT_FORMAT = "atelier-lora-checkpoint/1"
# Settings that may change between a run and its resume (they do not touch the weights).
RESUME_MAY_CHANGE = {
    "checkpoint_every_epochs",
    "checkpointing_steps",
    "max_checkpoints",
    "keep_last_checkpoints",
    "validation_prompts",
    "validation_seed",
    "validation_steps",
    "validation_guidance_scale",
    "validation_size",
}
# Timesteps of the held-out loss (one noise draw each per validation example).
HELD_OUT_TIMESTEPS = (100, 300, 500, 700, 900)


@dataclass(frozen=True)
class TrainingProgress:
    """What the callback receives. ``event``: "step", "checkpoint", "validation", "done",
    "cancelled". ``epoch`` is 1-based; ``paths`` lists files written by a checkpoint or
    validation event."""

    event: str
    step: int
    total_steps: int
    epoch: int
    total_epochs: int
    loss: float | None = None
    lr: float | None = None
    eta_seconds: float | None = None
    paths: tuple[str, ...] = ()
    validation_loss: float | None = None  # checkpoint events: the held-out loss


@dataclass
class TrainingResult:
    status: str  # "completed" | "cancelled"
    output_dir: str
    global_step: int
    total_steps: int
    epochs_completed: int
    total_epochs: int
    resumed_from_step: int | None
    loss_log: list[dict[str, float]]  # {"step", "epoch", "loss", "lr"} for every step
    files: LoraFiles | None  # None when cancelled
    checkpoints: list[str]
    validation_images: dict[str, list[str]] = field(default_factory=dict)  # "base"/"step-N"
    peak_memory_bytes: int = 0
    peak_memory_kind: str = ""
    device: str = "cpu"
    precision: str = "fp32"
    seconds: float = 0.0
    seconds_per_step: float | None = None
    # One row per checkpoint: {"step", "epoch", "train_loss" (mean since the previous
    # checkpoint), "validation_loss" (None without validation examples), "lora" (its file)}.
    checkpoint_log: list[dict[str, Any]] = field(default_factory=list)
    buckets: dict[str, int] = field(default_factory=dict)  # "WxH" -> examples

    @property
    def final_loss(self) -> float | None:
        """The last step's loss (one noisy sample: show it beside ``final_loss_mean``)."""
        return self.loss_log[-1]["loss"] if self.loss_log else None

    @property
    def final_loss_mean(self) -> float | None:
        """Mean loss of the last FINAL_LOSS_WINDOW steps (fewer when the run is shorter)."""
        return final_loss_mean(self.loss_log)


FINAL_LOSS_WINDOW = 20


def final_loss_mean(loss_log: list[dict], window: int = FINAL_LOSS_WINDOW) -> float | None:
    tail = [p["loss"] for p in loss_log[-window:] if p.get("loss") is not None]
    return sum(tail) / len(tail) if tail else None


# (image path or PIL image, caption) or (image, caption, regions): regions are (x, y, w, h)
# boxes in the image's pixels that masked loss weights fully.
Example = tuple[Any, str] | tuple[Any, str, Sequence[tuple[float, float, float, float]]]


def train_lora(
    config: LoraTrainingConfig,
    examples: Sequence[Example],
    *,
    base_model: Any,
    output_dir: str | Path,
    callback: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = True,
    device: str | None = None,
    title: str = "Atelier LoRA",
    license: str = "",
    provenance: dict[str, Any] | None = None,
    validation_examples: Sequence[Example] = (),
) -> TrainingResult:
    """Train a LoRA on ``examples`` and write its files into ``output_dir``.

    ``base_model``: a local model path (see pipeline.load_base_pipeline) or a loaded
    StableDiffusionPipeline (used as is: it gets the adapter; pass a fresh one).
    ``should_stop()`` is asked before every step; True ends the run as "cancelled", keeping the
    last checkpoint for a later resume. With ``resume`` the newest checkpoint in
    ``output_dir/checkpoints`` is continued (same settings and data required); without it old
    checkpoints are deleted first. Layout written: ``checkpoints/checkpoint-<step>.safetensors``,
    ``validation/base/<i>.png``, ``validation/step-<step>/<i>.png``,
    ``lora/pytorch_lora_weights.safetensors``, ``lora/lora_kohya.safetensors``,
    ``checkpoints/lora-<step>/`` (each checkpoint's LoRA files).
    ``validation_examples``: held-out examples whose loss every checkpoint records.
    """
    import numpy as np
    import torch
    import torch.nn.functional as F
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import cast_training_params, compute_snr
    from peft import LoraConfig

    from generation.diffusion.pipeline import load_base_pipeline

    errors = config.validate()
    if errors:
        raise ValueError("Invalid training settings: " + " ".join(errors))
    if not examples:
        raise ValueError("No training examples.")
    started_at = datetime.now(UTC)
    t_start = time.perf_counter()
    out = Path(output_dir)
    checkpoint_dir = out / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    on_cuda = device.startswith("cuda")
    use_amp = on_cuda and config.mixed_precision != "no"
    weight_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(
        config.mixed_precision if use_amp else "no", torch.float32
    )
    autocast_device = "cuda" if on_cuda else "cpu"
    peak = PeakMemory(device)
    peak.__enter__()
    try:
        # 1. Seed. Everything random in the loop draws from `generator`.
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        generator = torch.Generator().manual_seed(config.seed)

        # Data first (no model needed): pixels in [-1, 1] at the training resolution, captions
        # with the trigger. Their fingerprint lets an incompatible resume be refused before
        # the minutes a real base model takes to load.
        buckets = config.buckets()
        loaded = _load_examples(examples, config, buckets)
        images = [item.pixels for item in loaded]
        captions = [apply_trigger(ex[1], config.trigger_token) for ex in examples]
        regions = [item.regions for item in loaded]
        fingerprint = _dataset_fingerprint(images, captions, regions)
        held_out = _load_examples(validation_examples, config, buckets)
        held_out_captions = [
            apply_trigger(ex[1], config.trigger_token) for ex in validation_examples
        ]
        latest = _latest_checkpoint(checkpoint_dir) if resume else None
        if latest is not None:
            _check_resumable(latest, config=config, fingerprint=fingerprint)
        if isinstance(base_model, str | Path):
            _check_prediction_type(_folder_prediction_type(base_model), base_model)

        # 2. Load the base model.
        if isinstance(base_model, str | Path):
            pipe = load_base_pipeline(base_model)
            base_model_name = Path(base_model).name
        else:
            pipe = base_model
            base_model_name = getattr(pipe, "name_or_path", "") or "pipeline"
        tokenizer, text_encoder, vae, unet = pipe.tokenizer, pipe.text_encoder, pipe.vae, pipe.unet
        # The base model's own scheduler config says what its U-Net predicts.
        _check_prediction_type(pipe.scheduler.config.get("prediction_type"), base_model_name)
        noise_scheduler = _ddpm_scheduler(pipe.scheduler.config)

        # 3. Freeze everything; the adapters are the only trainable parameters.
        for model in (unet, vae, text_encoder):
            model.requires_grad_(False)
            model.to(device, dtype=weight_dtype if use_amp else None)

        # 4. Add the LoRA adapters (gaussian init, as diffusers' example).
        unet.add_adapter(
            LoraConfig(
                r=config.rank,
                lora_alpha=config.alpha,
                lora_dropout=config.dropout,
                init_lora_weights="gaussian",
                target_modules=config.unet_target_modules,
            )
        )
        train_te = config.trains_text_encoder
        if train_te:
            text_encoder.add_adapter(
                LoraConfig(
                    r=config.rank,
                    lora_alpha=config.alpha,
                    lora_dropout=config.dropout,
                    init_lora_weights="gaussian",
                    target_modules=list(TEXT_ENCODER_MODULES),
                )
            )
        trained = [("unet", unet)] + ([("text_encoder", text_encoder)] if train_te else [])
        if use_amp:
            cast_training_params([m for _, m in trained], dtype=torch.float32)
        if config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
            if train_te:
                text_encoder.gradient_checkpointing_enable()
        named_params = {
            f"{name}.{pname}": param
            for name, model in trained
            for pname, param in model.named_parameters()
            if param.requires_grad
        }
        unet_params = [p for n, p in named_params.items() if n.startswith("unet.")]
        te_params = [p for n, p in named_params.items() if n.startswith("text_encoder.")]

        # 5. Optimizer and learning-rate schedule.
        groups = [{"params": unet_params, "lr": config.unet_lr}]
        if te_params:
            groups.append({"params": te_params, "lr": config.text_encoder_lr})
        optimizer_kwargs = {
            "betas": (config.adam_beta1, config.adam_beta2),
            "weight_decay": config.adam_weight_decay,
            "eps": config.adam_epsilon,
        }
        if config.optimizer == "adamw8bit":
            import bitsandbytes as bnb

            optimizer = bnb.optim.AdamW8bit(groups, **optimizer_kwargs)
        else:
            optimizer = torch.optim.AdamW(groups, **optimizer_kwargs)

        # 6. Data (loaded above): batches, schedule, caches.
        n = len(images)
        bucket_of = [item.choice.bucket for item in loaded]
        # The same for every epoch: the sum over buckets of ceil(examples / batch size).
        steps_per_epoch = len(_epoch_batches(bucket_of, config.train_batch_size, config.seed, 0))
        if config.max_steps is not None:  # max_steps wins over epochs
            total_steps = config.max_steps
            total_epochs = math.ceil(total_steps / steps_per_epoch)
        else:
            total_steps = config.epochs * steps_per_epoch
            total_epochs = config.epochs
        lr_scheduler = get_scheduler(
            config.lr_scheduler,
            optimizer=optimizer,
            num_warmup_steps=config.lr_warmup_steps,
            num_training_steps=total_steps,
        )

        def tokenize(texts: list[str]) -> Any:
            return tokenizer(
                texts,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)

        def encode_posterior(pixels: Any) -> tuple[Any, Any]:
            return posterior(vae, pixels, device=device, dtype=weight_dtype)

        latent_cache: dict[tuple[int, bool], tuple[Any, Any]] = {}
        if config.cache_latents:  # VAE once per image (and per mirror image)
            for flip in (False, True) if config.random_flip else (False,):
                for index in range(n):
                    pixels = images[index][None]  # (1, 3, H, W) at its bucket
                    mean, std = encode_posterior(pixels.flip(-1) if flip else pixels)
                    latent_cache[(index, flip)] = (mean[0], std[0])
        # Masked loss: per example (and mirror) a latent-size weight map; an example without
        # regions has nothing to focus on and keeps weight 1 everywhere.
        weight_maps: dict[tuple[int, bool], Any] = {}
        if config.masked_loss:
            for index, item in enumerate(loaded):
                weight = loss_weight_map(item, config, vae)
                weight_maps[(index, False)] = weight
                weight_maps[(index, True)] = weight.flip(-1)
        embedding_cache: dict[str, Any] = {}
        if config.cache_text_embeddings and not train_te:
            with torch.no_grad():
                for caption in sorted(set(captions) | {""}):
                    embedding_cache[caption] = text_encoder(tokenize([caption]), return_dict=False)[
                        0
                    ][0]

        # Resume: the newest checkpoint (if any) restores weights, optimizer, RNG, step, epoch.
        global_step, first_epoch, loss_log = 0, 0, []
        checkpoint_log: list[dict[str, Any]] = []
        resumed_from = None
        checkpoints: list[str] = []
        if resume:
            if latest is not None:
                state = _load_checkpoint(
                    latest,
                    config=config,
                    fingerprint=fingerprint,
                    named_params=named_params,
                    optimizer=optimizer,
                    generator=generator,
                    device=device,
                )
                global_step, first_epoch, loss_log = (
                    state["step"],
                    state["epoch"],
                    state["loss_log"],
                )
                checkpoint_log = state["checkpoint_log"]
                with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()"
                    warnings.simplefilter("ignore")
                    for _ in range(global_step):  # the schedule is a pure function of the step
                        lr_scheduler.step()
                resumed_from = global_step
                checkpoints = [
                    str(p) for p in sorted(checkpoint_dir.glob("checkpoint-*.safetensors"))
                ]
        elif checkpoint_dir.exists():
            for old in checkpoint_dir.glob("checkpoint-*.safetensors"):
                old.unlink()

        scaler = torch.amp.GradScaler("cuda") if use_amp and weight_dtype == torch.float16 else None
        validation_images: dict[str, list[str]] = {}

        def report(event: str, epoch: int, **kwargs: Any) -> None:
            if callback is not None:
                callback(
                    TrainingProgress(
                        event=event,
                        step=global_step,
                        total_steps=total_steps,
                        epoch=epoch,
                        total_epochs=total_epochs,
                        **kwargs,
                    )
                )

        def run_validation(epoch: int) -> None:
            if not config.validation_prompts:
                return
            base_dir = out / "validation" / "base"
            if "base" not in validation_images:
                validation_images["base"] = _validation_images(
                    pipe,
                    config,
                    noise_scheduler,
                    base_dir,
                    device,
                    weight_dtype,
                    lora=False,
                    shape=validation_shape,
                )
            step_dir = out / "validation" / f"step-{global_step:06d}"
            paths = _validation_images(
                pipe,
                config,
                noise_scheduler,
                step_dir,
                device,
                weight_dtype,
                lora=True,
                shape=validation_shape,
            )
            validation_images[step_dir.name] = paths
            report("validation", epoch, paths=tuple(validation_images["base"] + paths))

        # Validation images at the dataset's dominant bucket (unless a size is set).
        if config.validation_size:
            validation_shape = (config.validation_size, config.validation_size)
        else:
            common = dominant_bucket(item.choice for item in loaded)
            validation_shape = (common.width, common.height)
        held_out_prepared: list[Any] = []

        def checkpoint_lora(epochs_completed: int) -> LoraFiles:
            metadata = build_metadata(
                config,
                title=f"{title} (step {global_step})",
                steps=global_step,
                epochs=epochs_completed,
                num_images=n,
                base_model_name=base_model_name,
                license=license,
                provenance={"dataset_fingerprint": fingerprint, **(provenance or {})},
                started_at=started_at,
            )
            return save_lora_files(
                checkpoint_dir / f"lora-{global_step:06d}",
                unet=unet,
                text_encoder=text_encoder if train_te else None,
                alpha=config.alpha,
                metadata=metadata,
            )

        def save_checkpoint(epochs_completed: int) -> None:
            if held_out and not held_out_prepared:
                held_out_prepared.extend(
                    _prepare_held_out(
                        held_out,
                        held_out_captions,
                        vae,
                        tokenizer,
                        noise_scheduler,
                        device,
                        weight_dtype,
                    )
                )
            held_out_loss = (
                _held_out_loss(held_out_prepared, unet, text_encoder, device, weight_dtype)
                if held_out
                else None
            )
            previous = checkpoint_log[-1]["step"] if checkpoint_log else 0
            recent = [p["loss"] for p in loss_log if p["step"] > previous]
            lora_files = checkpoint_lora(epochs_completed)
            row = {
                "step": global_step,
                "epoch": epochs_completed,
                "train_loss": sum(recent) / len(recent) if recent else None,
                "validation_loss": held_out_loss,
                "lora": lora_files.diffusers_path,
            }
            checkpoint_log[:] = [r for r in checkpoint_log if r["step"] != global_step] + [row]
            path = _save_checkpoint(
                checkpoint_dir,
                config=config,
                fingerprint=fingerprint,
                named_params=named_params,
                optimizer=optimizer,
                generator=generator,
                step=global_step,
                epoch=epochs_completed,
                loss_log=loss_log,
                device=device,
                checkpoint_log=checkpoint_log,
            )
            if str(path) not in checkpoints:
                checkpoints.append(str(path))
            lora_paths = (lora_files.diffusers_path,) + (
                (lora_files.kohya_path,) if lora_files.kohya_path else ()
            )
            report(
                "checkpoint",
                epochs_completed,
                paths=(str(path), *lora_paths),
                validation_loss=held_out_loss,
            )
            run_validation(epochs_completed)

        # 7. The training loop.
        unet.train()
        text_encoder.train(train_te)
        trainable = list(named_params.values())
        steps_this_call = 0
        epochs_completed = first_epoch
        loop_start = time.perf_counter()
        cancelled = False
        schedule = config.checkpoint_steps(total_steps, steps_per_epoch)
        for epoch in range(first_epoch, total_epochs):
            if global_step >= total_steps:
                break
            epoch_start_step = global_step
            for indices in _epoch_batches(bucket_of, config.train_batch_size, config.seed, epoch):
                if global_step >= total_steps:
                    break
                if should_stop is not None and should_stop():
                    cancelled = True
                    break
                bsz = len(indices)
                flips = (
                    (torch.rand(bsz, generator=generator) < 0.5).tolist()
                    if config.random_flip
                    else [False] * bsz
                )
                drops = (torch.rand(bsz, generator=generator) < config.caption_dropout).tolist()
                batch_captions = [
                    "" if d else captions[i] for i, d in zip(indices, drops, strict=True)
                ]

                # Latents: cached or freshly encoded posterior, sampled with our generator.
                if config.cache_latents:
                    cached = [latent_cache[key] for key in zip(indices, flips, strict=True)]
                    mean = torch.stack([m for m, _ in cached])
                    std = torch.stack([s for _, s in cached])
                else:
                    pixels = torch.stack(
                        [
                            images[i].flip(-1) if f else images[i]
                            for i, f in zip(indices, flips, strict=True)
                        ]
                    )
                    mean, std = encode_posterior(pixels)
                sample = torch.randn(mean.shape, generator=generator).to(device)
                latents = (mean + std * sample if config.sample_latents else mean) * (
                    vae.config.scaling_factor
                )
                noise = torch.randn(latents.shape, generator=generator).to(device)
                if config.noise_offset:
                    offset = torch.randn((bsz, latents.shape[1], 1, 1), generator=generator)
                    noise = noise + config.noise_offset * offset.to(device)
                timesteps = torch.randint(
                    0, noise_scheduler.config.num_train_timesteps, (bsz,), generator=generator
                ).to(device)
                noisy_latents = noise_scheduler.add_noise(latents, noise, timesteps)

                if embedding_cache:
                    encoder_hidden_states = torch.stack(
                        [embedding_cache[c] for c in batch_captions]
                    )
                else:
                    with torch.autocast(autocast_device, dtype=weight_dtype, enabled=use_amp):
                        encoder_hidden_states = text_encoder(
                            tokenize(batch_captions), return_dict=False
                        )[0]
                if noise_scheduler.config.prediction_type == "v_prediction":
                    target = noise_scheduler.get_velocity(latents, noise, timesteps)
                else:
                    target = noise

                with torch.autocast(autocast_device, dtype=weight_dtype, enabled=use_amp):
                    model_pred = unet(
                        noisy_latents.to(weight_dtype),
                        timesteps,
                        encoder_hidden_states.to(weight_dtype),
                        return_dict=False,
                    )[0]
                if config.snr_gamma is None and not config.masked_loss:
                    loss = F.mse_loss(model_pred.float(), target.float(), reduction="mean")
                elif config.snr_gamma is None:  # masked: kohya's multiply-then-mean
                    loss = F.mse_loss(model_pred.float(), target.float(), reduction="none")
                    mask = torch.stack([weight_maps[k] for k in zip(indices, flips, strict=True)])
                    loss = (loss * mask[:, None].to(loss.device)).mean()
                else:  # min-SNR weighting, as diffusers' example
                    snr = compute_snr(noise_scheduler, timesteps)
                    weights = torch.clamp(snr, max=config.snr_gamma)
                    if noise_scheduler.config.prediction_type == "v_prediction":
                        weights = weights / (snr + 1)
                    else:
                        weights = weights / snr
                    loss = F.mse_loss(model_pred.float(), target.float(), reduction="none")
                    if config.masked_loss:
                        mask = torch.stack(
                            [weight_maps[k] for k in zip(indices, flips, strict=True)]
                        )
                        loss = loss * mask[:, None].to(loss.device)
                    loss = (loss.mean(dim=list(range(1, loss.ndim))) * weights).mean()

                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
                    optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                lr_scheduler.step()
                optimizer.zero_grad(set_to_none=True)

                global_step += 1
                steps_this_call += 1
                loss_value = float(loss.detach())
                loss_log.append(
                    {"step": global_step, "epoch": epoch + 1, "loss": loss_value, "lr": lr}
                )
                elapsed = time.perf_counter() - loop_start
                eta = elapsed / steps_this_call * (total_steps - global_step)
                peak.sample()
                report("step", epoch + 1, loss=loss_value, lr=lr, eta_seconds=eta)
            if cancelled:
                break
            epochs_completed = epoch + 1
            # 8. Checkpoint at the end of an epoch that reached a scheduled step (every N steps
            # or epochs, at most max_checkpoints; resume restarts at epoch boundaries), and at
            # the very end; keep only the newest keep_last_checkpoints resume states.
            finished = global_step >= total_steps
            due = [s for s in schedule if epoch_start_step < s <= global_step]
            if due or finished:
                save_checkpoint(epoch + 1)
                _prune_checkpoints(checkpoint_dir, checkpoints, config.keep_last_checkpoints)
        loop_seconds = time.perf_counter() - loop_start

        files = None
        if cancelled:
            report("cancelled", epochs_completed)
        else:
            if (
                resumed_from is not None
                and resumed_from >= total_steps
                and config.validation_prompts
            ):
                run_validation(epochs_completed)  # finished before a crash: redo the last images
            # 9. Save the LoRA in both formats with provenance metadata.
            metadata = build_metadata(
                config,
                title=title,
                steps=global_step,
                epochs=epochs_completed,
                num_images=n,
                base_model_name=base_model_name,
                license=license,
                provenance={"dataset_fingerprint": fingerprint, **(provenance or {})},
                started_at=started_at,
            )
            files = save_lora_files(
                out / "lora",
                unet=unet,
                text_encoder=text_encoder if train_te else None,
                alpha=config.alpha,
                metadata=metadata,
            )
            report("done", epochs_completed, paths=(files.diffusers_path, files.kohya_path))
        peak.__exit__(None, None, None)
        return TrainingResult(
            status="cancelled" if cancelled else "completed",
            output_dir=str(out),
            global_step=global_step,
            total_steps=total_steps,
            epochs_completed=epochs_completed,
            total_epochs=total_epochs,
            resumed_from_step=resumed_from,
            loss_log=loss_log,
            files=files,
            checkpoints=checkpoints,
            validation_images=validation_images,
            peak_memory_bytes=peak.peak_bytes,
            peak_memory_kind=peak.kind,
            device=device,
            precision=str(weight_dtype).replace("torch.", ""),
            seconds=time.perf_counter() - t_start,
            seconds_per_step=loop_seconds / steps_this_call if steps_this_call else None,
            checkpoint_log=[dict(row) for row in checkpoint_log],
            buckets=_bucket_counts(bucket_of),
        )
    finally:  # the RSS sampler thread must not outlive a run that raised
        peak.__exit__(None, None, None)


def evaluation_loss(
    pipe: Any,
    examples: Sequence[Example],
    *,
    resolution: int,
    seed: int = 0,
    timesteps: Sequence[int] = (100, 300, 500, 700, 900),
    trigger_token: str = "",
) -> float:
    """The denoising loss of ``pipe`` (with or without a LoRA loaded) on ``examples`` at fixed
    timesteps with fixed noise: the same number for the same weights, so runs and sweep cells
    compare without the noise of the per-step training loss."""
    import torch
    import torch.nn.functional as F

    scheduler = _ddpm_scheduler(pipe.scheduler.config)
    generator = torch.Generator().manual_seed(seed)
    device, dtype = pipe.unet.device, pipe.unet.dtype
    losses = []
    with torch.no_grad():
        for image, caption in examples:
            pixels = _load_image(image, resolution)[None].to(device, dtype)
            latents = pipe.vae.encode(pixels).latent_dist.mean * pipe.vae.config.scaling_factor
            ids = pipe.tokenizer(
                [apply_trigger(caption, trigger_token)],
                padding="max_length",
                max_length=pipe.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            hidden = pipe.text_encoder(ids, return_dict=False)[0]
            for t in timesteps:
                noise = torch.randn(latents.shape, generator=generator).to(device, dtype)
                step = torch.tensor([t], device=device)
                noisy = scheduler.add_noise(latents, noise, step)
                pred = pipe.unet(noisy, step, hidden, return_dict=False)[0]
                target = (
                    scheduler.get_velocity(latents, noise, step)
                    if scheduler.config.prediction_type == "v_prediction"
                    else noise
                )
                losses.append(F.mse_loss(pred.float(), target.float()).item())
    return float(sum(losses) / len(losses))


# --- helpers, in the order the loop uses them ---


def _ddpm_scheduler(config: Any) -> Any:
    """The training noise scheduler: DDPM with the base model's betas (as diffusers' example)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(config)


def _load_image(image: Any, resolution: int) -> Any:
    """RGB, shorter side resized to ``resolution``, centre-cropped, as a tensor in [-1, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    if not isinstance(image, Image.Image):
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    image = image.convert("RGB")
    width, height = image.size
    scale = resolution / min(width, height)
    size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    image = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    image = image.crop((left, top, left + resolution, top + resolution))
    array = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def posterior(vae: Any, pixels: Any, *, device: Any, dtype: Any) -> tuple[Any, Any]:
    """The VAE posterior's (mean, std) of a batch of pixels (what the latent cache holds)."""
    import torch

    with torch.no_grad():
        dist = vae.encode(pixels.to(device, dtype=dtype)).latent_dist
    return dist.mean.float(), dist.std.float()


def loss_weight_map(item: LoadedExample, config: LoraTrainingConfig, vae: Any) -> Any:
    """(h, w) latent-cell weights of masked loss: 1 inside the example's regions (their
    coverage of each cell), ``unmasked_weight`` outside; an example without regions has
    nothing to focus on and keeps weight 1 everywhere."""
    import torch

    scale = 2 ** (len(vae.config.block_out_channels) - 1)
    _, height, width = item.pixels.shape
    if not item.regions:
        return torch.ones(height // scale, width // scale)
    cover = torch.tensor(mask_from_boxes(item.regions, width // scale, height // scale))
    return config.unmasked_weight + (1 - config.unmasked_weight) * cover


@dataclass(frozen=True)
class LoadedExample:
    """An example at its bucket: pixels (3, H, W) in [-1, 1], the choice (bucket, crop box in
    the source image) and its regions as fractions (x, y, w, h) of the crop."""

    pixels: Any
    choice: BucketChoice
    regions: tuple[tuple[float, float, float, float], ...] = ()


def load_example(
    example: Example, config: LoraTrainingConfig, buckets: Sequence[Bucket], *, name: str
) -> LoadedExample:
    """One example resized to its bucket (or the square without bucketing); BucketError
    naming it when it is too small or too long for every bucket."""
    import numpy as np
    import torch
    from PIL import Image

    image = example[0]
    if not isinstance(image, Image.Image):
        name = Path(str(image)).name
        with Image.open(image) as opened:
            image = opened.convert("RGB")
    image = image.convert("RGB")
    width, height = image.size
    if config.bucketing:
        choice = choose_bucket(width, height, buckets, name=name)
        resized = resize_to_bucket(image, choice)
    else:  # the old square: shorter side to resolution, centre crop (as _load_image)
        res = config.resolution
        side = min(width, height)
        choice = BucketChoice(
            size=(width, height),
            bucket=Bucket(res, res),
            crop=((width - side) / 2, (height - side) / 2, float(side), float(side)),
        )
        resized = None
    if resized is None:
        pixels = _load_image(image, config.resolution)
    else:
        array = np.asarray(resized, dtype=np.float32) / 127.5 - 1.0
        pixels = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    boxes = example[2] if len(example) > 2 else ()
    return LoadedExample(pixels, choice, tuple(boxes_in_crop(boxes or (), choice)))


def _load_examples(
    examples: Sequence[Example], config: LoraTrainingConfig, buckets: Sequence[Bucket]
) -> list[LoadedExample]:
    """Every example at its bucket; one ValueError naming every image no bucket can take."""
    loaded, problems = [], []
    for index, example in enumerate(examples):
        try:
            loaded.append(load_example(example, config, buckets, name=f"example {index + 1}"))
        except BucketError as error:
            problems.append(str(error))
    if problems:
        raise ValueError("Cannot train on these images: " + " ".join(problems))
    return loaded


def _epoch_batches(
    buckets: Sequence[Bucket], batch_size: int, seed: int, epoch: int
) -> list[list[int]]:
    """The batches of one epoch: the seeded permutation of all examples, grouped by bucket and
    cut into batches, ordered by where each batch's first example stands in the permutation.
    Pure function of (buckets, batch size, seed, epoch): resume replays it exactly."""
    import torch

    order = torch.randperm(len(buckets), generator=torch.Generator().manual_seed(seed + epoch))
    groups: dict[Bucket, list[int]] = {}
    position: dict[Bucket, list[int]] = {}
    for rank, index in enumerate(order.tolist()):
        groups.setdefault(buckets[index], []).append(index)
        position.setdefault(buckets[index], []).append(rank)
    batches: list[tuple[int, list[int]]] = []
    for bucket, members in groups.items():
        for start in range(0, len(members), batch_size):
            batches.append((position[bucket][start], members[start : start + batch_size]))
    return [members for _, members in sorted(batches, key=lambda b: b[0])]


def _bucket_counts(buckets: Sequence[Bucket]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for bucket in buckets:
        counts[bucket.label] = counts.get(bucket.label, 0) + 1
    return dict(sorted(counts.items()))


def _prepare_held_out(
    loaded: Sequence[LoadedExample],
    captions: Sequence[str],
    vae: Any,
    tokenizer: Any,
    scheduler: Any,
    device: str,
    weight_dtype: Any,
) -> list[tuple[Any, Any, Any, Any]]:
    """(noisy latents, timesteps, target, token ids) per held-out example: the posterior mean,
    noise from a generator seeded 0 (the same in every run), ``HELD_OUT_TIMESTEPS``."""
    import torch

    generator = torch.Generator().manual_seed(0)
    prepared = []
    with torch.no_grad():
        for item, caption in zip(loaded, captions, strict=True):
            pixels = item.pixels[None].to(device, dtype=weight_dtype)
            latents = vae.encode(pixels).latent_dist.mean.float() * vae.config.scaling_factor
            steps = torch.tensor(HELD_OUT_TIMESTEPS, device=device)
            latents = latents.repeat(len(HELD_OUT_TIMESTEPS), 1, 1, 1)
            noise = torch.randn(latents.shape, generator=generator).to(device)
            noisy = scheduler.add_noise(latents, noise, steps)
            if scheduler.config.prediction_type == "v_prediction":
                target = scheduler.get_velocity(latents, noise, steps)
            else:
                target = noise
            ids = tokenizer(
                [caption],
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids.to(device)
            prepared.append((noisy, steps, target, ids))
    return prepared


def _held_out_loss(
    prepared: Sequence[tuple[Any, Any, Any, Any]],
    unet: Any,
    text_encoder: Any,
    device: str,
    weight_dtype: Any,
) -> float:
    """Mean MSE over the prepared held-out batches, models in eval mode (no LoRA dropout),
    no draw from any shared generator: the same weights give the same number."""
    import torch
    import torch.nn.functional as F

    modes = {m: m.training for m in (unet, text_encoder)}
    losses = []
    try:
        unet.eval()
        text_encoder.eval()
        with (
            torch.no_grad(),
            torch.autocast(
                "cuda" if str(device).startswith("cuda") else "cpu",
                dtype=weight_dtype,
                enabled=weight_dtype != torch.float32,
            ),
        ):
            for noisy, steps, target, ids in prepared:
                hidden = text_encoder(ids, return_dict=False)[0]
                hidden = hidden.repeat(noisy.shape[0], 1, 1)
                pred = unet(
                    noisy.to(weight_dtype), steps, hidden.to(weight_dtype), return_dict=False
                )[0]
                losses.append(F.mse_loss(pred.float(), target.float()).item())
    finally:
        for model, training in modes.items():
            model.train(training)
    return float(sum(losses) / len(losses))


def validation_loss(pipe: Any, examples: Sequence[Example], *, config: LoraTrainingConfig) -> float:
    """The held-out loss training records at a checkpoint, for ``pipe`` as it is (load a
    checkpoint's LoRA into it first): same weights and examples, same number."""
    loaded = _load_examples(examples, config, config.buckets())
    captions = [apply_trigger(ex[1], config.trigger_token) for ex in examples]
    device, dtype = str(pipe.unet.device), pipe.unet.dtype
    scheduler = _ddpm_scheduler(pipe.scheduler.config)
    prepared = _prepare_held_out(
        loaded, captions, pipe.vae, pipe.tokenizer, scheduler, device, dtype
    )
    return _held_out_loss(prepared, pipe.unet, pipe.text_encoder, device, dtype)


def _dataset_fingerprint(
    images: list[Any], captions: list[str], regions: Sequence[Sequence[Any]] = ()
) -> str:
    digest = hashlib.sha256()
    for tensor, caption in zip(images, captions, strict=True):
        digest.update(str(tuple(tensor.shape)).encode())  # the bucket
        digest.update(tensor.numpy().tobytes())
        digest.update(caption.encode("utf-8") + b"\0")
    if any(regions):
        digest.update(json.dumps([list(map(list, r)) for r in regions]).encode())
    return digest.hexdigest()


def _validation_images(
    pipe: Any,
    config: LoraTrainingConfig,
    noise_scheduler: Any,
    out_dir: Path,
    device: str,
    weight_dtype: Any,
    *,
    lora: bool,
    shape: tuple[int, int] | None = None,
) -> list[str]:
    """One PNG per validation prompt, seed ``validation_seed + i``; ``lora=False`` disables
    the adapters (scale 0: the base model's output; unfuse would not restore it)."""
    import torch
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    rng_state = torch.get_rng_state()  # validation must not shift the training's randomness
    adapted = [m for m in (pipe.unet, pipe.text_encoder) if getattr(m, "peft_config", None)]
    modes = {m: m.training for m in (pipe.unet, pipe.text_encoder, pipe.vae)}
    validation_pipe = StableDiffusionPipeline(
        vae=pipe.vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        unet=pipe.unet,
        scheduler=DDIMScheduler.from_config(noise_scheduler.config),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    validation_pipe.set_progress_bar_config(disable=True)
    width, height = shape or (config.resolution, config.resolution)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for model in modes:
            model.eval()
        if not lora:
            for model in adapted:
                model.disable_adapters()
        for index, prompt in enumerate(config.validation_prompts):
            generator = torch.Generator().manual_seed(config.validation_seed + index)
            with (
                torch.no_grad(),
                torch.autocast(
                    "cuda" if device.startswith("cuda") else "cpu",
                    dtype=weight_dtype,
                    enabled=weight_dtype != torch.float32,
                ),
            ):
                image = validation_pipe(
                    apply_trigger(prompt, config.trigger_token),
                    num_inference_steps=config.validation_steps,
                    guidance_scale=config.validation_guidance_scale,
                    height=height,
                    width=width,
                    generator=generator,
                ).images[0]
            path = out_dir / f"{index:02d}.png"
            image.save(path)
            paths.append(str(path))
    finally:
        if not lora:
            for model in adapted:
                model.enable_adapters()
        for model, training in modes.items():
            model.train(training)
        torch.set_rng_state(rng_state)
    return paths


def _folder_prediction_type(path: str | Path) -> str | None:
    """``prediction_type`` from a diffusers folder's scheduler config, read without loading
    anything (None for a single file or a folder without one: checked after loading)."""
    config = Path(path) / "scheduler" / "scheduler_config.json"
    if not config.is_file():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("prediction_type", "epsilon")


def _check_prediction_type(prediction_type: str | None, model_name: Any) -> None:
    error = prediction_type_error(prediction_type or "epsilon")
    if error:
        raise ValueError(f"{Path(str(model_name)).name}: {error}")


def _check_resumable(path: Path, *, config: LoraTrainingConfig, fingerprint: str) -> None:
    """Refuse a resume from ``path`` on its header alone (settings, data): before any model
    is loaded, and without reading its tensors."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path.name} is not a training checkpoint of this version.")
    saved = json.loads(meta["config"])
    now = config.to_dict()
    changed = sorted(k for k in now if k not in RESUME_MAY_CHANGE and saved.get(k) != now[k])
    if changed:
        raise ValueError(
            f"Cannot resume from {path.name}: these settings changed since it was written: "
            f"{', '.join(changed)}. Start a new run instead."
        )
    if meta["dataset_fingerprint"] != fingerprint:
        raise ValueError(
            f"Cannot resume from {path.name}: the training images or captions have changed."
        )


def _store_once(tensors: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Tensors safetensors can save, plus ``{alias: stored key}``.

    safetensors refuses tensors that share memory ("Some tensors share memory"), and
    bitsandbytes' 8-bit state shares one ``qmap1``/``qmap2`` tensor across every parameter
    with 8-bit state (factors of 4096 elements or more: any SD 1.5 width). The same tensor
    is stored once under its first key; other views of a shared buffer are copied.
    """
    stored: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    first_key: dict[tuple, str] = {}
    buffers: set[int] = set()
    for key, tensor in tensors.items():
        if tensor.numel() == 0:
            stored[key] = tensor
            continue
        buffer = tensor.untyped_storage().data_ptr()
        view = (buffer, tensor.storage_offset(), tuple(tensor.shape), tensor.stride(), tensor.dtype)
        if view in first_key:
            aliases[key] = first_key[view]
            continue
        if buffer in buffers:  # another view of a buffer already stored: its own copy
            tensor = tensor.clone()
        else:
            buffers.add(buffer)
        first_key[view] = key
        stored[key] = tensor
    return stored, aliases


def _latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    found = sorted(checkpoint_dir.glob("checkpoint-*.safetensors"))
    return found[-1] if found else None


def _prune_checkpoints(checkpoint_dir: Path, checkpoints: list[str], keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` resume states (0: keep every one)."""
    if keep_last <= 0:
        return
    found = sorted(checkpoint_dir.glob("checkpoint-*.safetensors"))
    for old in found[:-keep_last]:
        old.unlink(missing_ok=True)
        if str(old) in checkpoints:
            checkpoints.remove(str(old))


def _save_checkpoint(
    checkpoint_dir: Path,
    *,
    config: LoraTrainingConfig,
    fingerprint: str,
    named_params: dict[str, Any],
    optimizer: Any,
    generator: Any,
    step: int,
    epoch: int,
    loss_log: list[dict[str, float]],
    device: str,
    checkpoint_log: list[dict[str, Any]] | None = None,
) -> Path:
    """One safetensors file, written atomically (temp file + rename): a crash mid-write
    leaves the previous checkpoint as the newest."""
    import numpy as np
    import torch
    from safetensors.torch import save_file

    tensors: dict[str, Any] = {
        f"param.{name}": p.detach().float().cpu().contiguous() for name, p in named_params.items()
    }
    opt_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for index, values in opt_state["state"].items():
        flat = dict(values)
        for key in [k for k, v in values.items() if isinstance(v, dict)]:
            flat.update(flat.pop(key))  # bitsandbytes nests its 8-bit state; it loads flat too
        for key, value in flat.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[key] = value
    tensors["rng.generator"] = generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    if device.startswith("cuda"):
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    np_state = np.random.get_state()
    tensors["rng.numpy_keys"] = torch.from_numpy(np_state[1].astype(np.int64))
    py_state = random.getstate()
    metadata = {
        "format": CHECKPOINT_FORMAT,
        "step": str(step),
        "epoch": str(epoch),
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "dataset_fingerprint": fingerprint,
        "optimizer_class": type(optimizer).__name__,
        "optimizer_param_groups": json.dumps(
            [{k: v for k, v in g.items() if k != "params"} for g in opt_state["param_groups"]]
        ),
        "optimizer_param_ids": json.dumps([g["params"] for g in opt_state["param_groups"]]),
        "optimizer_scalars": json.dumps(scalars),
        "numpy_random": json.dumps([np_state[0], int(np_state[2]), int(np_state[3]), np_state[4]]),
        "python_random": json.dumps([py_state[0], list(py_state[1]), py_state[2]]),
        "loss_log": json.dumps(loss_log),
        # Held-out losses so far; LoRA paths are relative (the folder may move on resume).
        "checkpoint_log": json.dumps(
            [{**row, "lora": Path(row["lora"]).parent.name} for row in checkpoint_log or []]
        ),
    }
    tensors, aliases = _store_once(tensors)
    metadata["tensor_aliases"] = json.dumps(aliases, sort_keys=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    path = checkpoint_dir / f"checkpoint-{step:06d}.safetensors"
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def _load_checkpoint(
    path: Path,
    *,
    config: LoraTrainingConfig,
    fingerprint: str,
    named_params: dict[str, Any],
    optimizer: Any,
    generator: Any,
    device: str,
) -> dict[str, Any]:
    import numpy as np
    import torch
    from safetensors import safe_open

    _check_resumable(path, config=config, fingerprint=fingerprint)
    with safe_open(str(path), framework="pt") as handle:
        meta = handle.metadata() or {}
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    # Shared tensors (bitsandbytes' quantisation maps) were stored once: share them again.
    for alias, key in json.loads(meta.get("tensor_aliases", "{}")).items():
        tensors[alias] = tensors[key]
    with torch.no_grad():
        for name, param in named_params.items():
            param.copy_(tensors[f"param.{name}"].to(param.device, param.dtype))
    groups = json.loads(meta["optimizer_param_groups"])
    for group, ids in zip(groups, json.loads(meta["optimizer_param_ids"]), strict=True):
        group["params"] = ids
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in json.loads(meta["optimizer_scalars"]).items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": groups})
    generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    if "rng.cuda" in tensors and device.startswith("cuda"):
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    name, pos, has_gauss, cached = json.loads(meta["numpy_random"])
    np.random.set_state(
        (name, tensors["rng.numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, cached)
    )
    version, internal, gauss = json.loads(meta["python_random"])
    random.setstate((version, tuple(internal), gauss))
    return {
        "step": int(meta["step"]),
        "epoch": int(meta["epoch"]),
        "loss_log": json.loads(meta["loss_log"]),
        "checkpoint_log": [
            {
                **row,
                "lora": str(path.parent / row["lora"] / "pytorch_lora_weights.safetensors"),
            }
            for row in json.loads(meta.get("checkpoint_log", "[]"))
        ],
    }
