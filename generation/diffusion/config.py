"""Settings of a LoRA fine-tuning run: one frozen dataclass, its checks, and the papers' presets.

``LoraTrainingConfig`` replaces the argparse namespace of diffusers'
``examples/text_to_image/train_text_to_image_lora.py``. ``validate()`` returns every problem
as a sentence (empty list = fine) so the web layer can refuse a run before anything is queued.

Epochs or steps: ``max_steps`` wins when it is set. Training then stops after that many
optimizer steps, whatever ``epochs`` says (as diffusers' ``--max_train_steps`` does); with
``max_steps=None`` the run lasts ``epochs`` full passes over the data.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

TARGETS = ("unet_attention", "unet_cross_attention", "unet_and_text_encoder", "unet_all")
OPTIMIZERS = ("adamw", "adamw8bit")
LR_SCHEDULERS = (
    "constant",
    "constant_with_warmup",
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
)
MIXED_PRECISIONS = ("no", "fp16", "bf16")
# What the base U-Net predicts (its scheduler config's prediction_type): the loss target.
PREDICTION_TYPES = ("epsilon", "v_prediction")

# A trigger is one made-up word prepended as "<trigger>, caption": a space would make it two
# words, a comma would give "qxls,, caption", brackets become their own CLIP tokens.
TRIGGER_PATTERN = re.compile(r"[^\W_][\w-]*")
# 001_465742bc70709bdb writes its trigger as "[U]" ("[U], prompt"), and datasets default to
# it: that exact form is allowed as the papers' documented trigger.
PAPER_TRIGGER = "[U]"

# Module names inside diffusers' attention blocks / the CLIP text encoder that get a LoRA.
UNET_ATTENTION_MODULES = ("to_k", "to_q", "to_v", "to_out.0")
# attn2 is the cross-attention (text -> image) of every transformer block; regexes keep attn1 out.
UNET_CROSS_ATTENTION_MODULES = (
    r".*attn2\.to_k",
    r".*attn2\.to_q",
    r".*attn2\.to_v",
    r".*attn2\.to_out\.0",
)
TEXT_ENCODER_MODULES = ("q_proj", "k_proj", "v_proj", "out_proj")
# "unet_all": every linear and conv layer of the U-Net's blocks (attention, its projections and
# feed-forward, the resnets, the time embedding and, where the U-Net has one, the text-to-time
# `add_embedding`), for small base models whose attention alone cannot carry a new palette.
# A full-match regex: conv_in/conv_out and the samplers stay frozen, and so does the attention
# pooling inside add_embedding (diffusers' load_lora_weights turns a LoRA there into NaNs).
UNET_ALL_MODULES = (
    r".*(to_q|to_k|to_v|to_out\.0|proj_in|proj_out|ff\.net\.0\.proj|ff\.net\.2"
    r"|time_embedding\.linear_[12]|add_embedding\.proj"
    r"|time_emb_proj|conv1|conv2|conv_shortcut)"
)


@dataclass(frozen=True)
class LoraTrainingConfig:
    """Every setting of a run. Defaults are those of diffusers' LoRA example where it has one."""

    # data
    # Training size in pixels. With bucketing every image trains at the aspect-ratio bucket of
    # about resolution**2 pixels nearest its own (buckets.py); without, resized + centre-cropped
    # to a resolution x resolution square.
    resolution: int = 512
    bucketing: bool = True
    bucket_step: int | None = None  # None: 64 px (SD's U-Net needs it) or 8 below 256 px
    bucket_min_side: int | None = None  # None: resolution / 4
    bucket_max_side: int | None = None  # None: resolution * 2.5
    train_batch_size: int = 1
    random_flip: bool = False  # horizontal flip, seeded
    caption_dropout: float = 0.0  # probability of training on the empty caption
    trigger_token: str = ""  # prepended as "<token>, caption" when a caption lacks it
    # LoRA
    rank: int = 4
    alpha: float = 4.0  # the scale of the update is alpha / rank
    dropout: float = 0.0
    target: str = "unet_attention"
    # optimisation
    unet_lr: float = 1e-4
    text_encoder_lr: float = 5e-5
    optimizer: str = "adamw"
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_weight_decay: float = 1e-2
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0
    lr_scheduler: str = "constant"
    lr_warmup_steps: int = 0
    # loss
    snr_gamma: float | None = None  # min-SNR weighting (Hang et al. 2023); 5.0 is the usual value
    noise_offset: float = 0.0
    # Masked loss: examples may carry regions (the catalogue's annotations); the loss of latent
    # cells outside them is multiplied by unmasked_weight (kohya's alpha mask, but from data).
    masked_loss: bool = False
    unmasked_weight: float = 0.1
    # speed / memory
    mixed_precision: str = "no"  # applies on a GPU; CPU training stays in float32
    gradient_checkpointing: bool = False
    cache_latents: bool = True
    cache_text_embeddings: bool = True  # only possible while the text encoder is frozen
    # Train on latents drawn from the VAE posterior (diffusers' example). False: its mean, for a
    # VAE trained as a plain autoencoder whose posterior std was never trained (the demo model's
    # is ~1, as large as the signal) -- the base U-Net was trained on the mean too.
    sample_latents: bool = True
    # length
    seed: int = 0
    epochs: int = 1
    max_steps: int | None = None  # wins over epochs when set
    checkpoint_every_epochs: int = 1
    # By step count instead (0: by epochs), at most max_checkpoints over the run (the interval
    # widens to fit; the final step always gets one), and only the newest keep_last_checkpoints
    # resume states are kept (0: all), as diffusers' checkpointing_steps / total_limit.
    checkpointing_steps: int = 0
    max_checkpoints: int = 10
    keep_last_checkpoints: int = 0
    # validation images at each checkpoint (beside the base model's)
    validation_prompts: tuple[str, ...] = ()
    validation_seed: int = 0
    validation_steps: int = 35  # DDIM steps, as 001_465742bc70709bdb
    validation_guidance_scale: float = 7.0
    validation_size: int | None = None  # None = resolution

    def checkpoint_steps(self, total_steps: int, steps_per_epoch: int) -> list[int]:
        """The optimizer steps after which a checkpoint is written: every
        ``checkpointing_steps`` (else every ``checkpoint_every_epochs`` epochs), widened so at
        most ``max_checkpoints`` are written, and always the last step."""
        if total_steps <= 0:
            return []
        every = self.checkpointing_steps or self.checkpoint_every_epochs * max(steps_per_epoch, 1)
        every = max(every, math.ceil(total_steps / self.max_checkpoints))
        steps = list(range(every, total_steps, every))
        if len(steps) >= self.max_checkpoints:  # room for the final one within the cap
            steps = steps[: self.max_checkpoints - 1]
        return [*steps, total_steps]

    def __post_init__(self) -> None:
        # JSON gives lists; keep the dataclass hashable and immutable.
        if not isinstance(self.validation_prompts, tuple):
            object.__setattr__(self, "validation_prompts", tuple(self.validation_prompts))

    @property
    def effective_bucket_step(self) -> int:
        from generation.diffusion.buckets import default_step

        return self.bucket_step if self.bucket_step is not None else default_step(self.resolution)

    def buckets(self) -> list:
        """The bucket list of these settings (one square bucket when bucketing is off)."""
        from generation.diffusion.buckets import Bucket, make_buckets

        if not self.bucketing:
            return [Bucket(self.resolution, self.resolution)]
        return make_buckets(
            self.resolution,
            step=self.effective_bucket_step,
            min_side=self.bucket_min_side,
            max_side=self.bucket_max_side,
        )

    @property
    def trains_text_encoder(self) -> bool:
        return self.target == "unet_and_text_encoder"

    @property
    def unet_target_modules(self) -> list[str] | str:
        if self.target == "unet_attention":
            return list(UNET_ATTENTION_MODULES)
        if self.target == "unet_all":
            return UNET_ALL_MODULES
        # peft treats a str as one full-match regex: only attn2 (cross-attention) modules.
        return "|".join(UNET_CROSS_ATTENTION_MODULES)

    def validate(self) -> list[str]:
        """Every out-of-range or contradictory setting, as a sentence a curator can act on."""
        errors: list[str] = []

        def check(ok: bool, message: str) -> None:
            if not ok:
                errors.append(message)

        def is_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        def is_number(value: Any) -> bool:
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )

        check(
            is_int(self.resolution) and 32 <= self.resolution <= 2048 and self.resolution % 8 == 0,
            "resolution must be a multiple of 8 between 32 and 2048 pixels "
            f"(got {self.resolution!r}).",
        )
        if is_int(self.resolution) and isinstance(self.bucketing, bool) and self.bucketing:
            for name in ("bucket_step", "bucket_min_side", "bucket_max_side"):
                value = getattr(self, name)
                check(
                    value is None or (is_int(value) and 8 <= value <= 4096 and value % 8 == 0),
                    f"{name} must be empty or a multiple of 8 between 8 and 4096 (got {value!r}).",
                )
            if not errors:
                try:
                    self.buckets()
                except ValueError as error:
                    errors.append(f"Bucket settings: {error}")
        check(isinstance(self.bucketing, bool), "bucketing must be true or false.")
        check(isinstance(self.masked_loss, bool), "masked_loss must be true or false.")
        check(
            is_number(self.unmasked_weight) and 0 <= self.unmasked_weight <= 1,
            f"unmasked_weight must be between 0 and 1 (got {self.unmasked_weight!r}).",
        )
        check(
            is_int(self.train_batch_size) and 1 <= self.train_batch_size <= 64,
            f"train_batch_size must be between 1 and 64 (got {self.train_batch_size!r}).",
        )
        check(
            is_number(self.caption_dropout) and 0 <= self.caption_dropout < 1,
            f"caption_dropout must be at least 0 and below 1 (got {self.caption_dropout!r}).",
        )
        check(
            isinstance(self.trigger_token, str) and len(self.trigger_token) <= 64,
            "trigger_token must be text of at most 64 characters.",
        )
        if isinstance(self.trigger_token, str) and len(self.trigger_token) <= 64:
            trigger_error = trigger_token_error(self.trigger_token)
            if trigger_error:
                errors.append(trigger_error)
        check(
            is_int(self.rank) and 1 <= self.rank <= 256,
            f"rank must be between 1 and 256 (got {self.rank!r}).",
        )
        check(
            is_number(self.alpha) and 0 < self.alpha <= 1024,
            f"alpha must be above 0 and at most 1024 (got {self.alpha!r}).",
        )
        check(
            is_number(self.dropout) and 0 <= self.dropout < 1,
            f"dropout must be at least 0 and below 1 (got {self.dropout!r}).",
        )
        check(
            self.target in TARGETS,
            f"target must be one of {', '.join(TARGETS)} (got {self.target!r}).",
        )
        for name in ("unet_lr", "text_encoder_lr"):
            value = getattr(self, name)
            check(
                is_number(value) and 0 < value <= 1e-1,
                f"{name} must be above 0 and at most 0.1 (got {value!r}).",
            )
        check(
            self.optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)} (got {self.optimizer!r}).",
        )
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            check(
                is_number(value) and 0 <= value < 1,
                f"{name} must be at least 0 and below 1 (got {value!r}).",
            )
        check(
            is_number(self.adam_weight_decay) and 0 <= self.adam_weight_decay <= 1,
            f"adam_weight_decay must be between 0 and 1 (got {self.adam_weight_decay!r}).",
        )
        check(
            is_number(self.adam_epsilon) and 0 < self.adam_epsilon <= 1e-3,
            f"adam_epsilon must be above 0 and at most 0.001 (got {self.adam_epsilon!r}).",
        )
        check(
            is_number(self.max_grad_norm) and self.max_grad_norm > 0,
            f"max_grad_norm must be above 0 (got {self.max_grad_norm!r}).",
        )
        check(
            self.lr_scheduler in LR_SCHEDULERS,
            f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)} (got {self.lr_scheduler!r}).",
        )
        check(
            is_int(self.lr_warmup_steps) and self.lr_warmup_steps >= 0,
            f"lr_warmup_steps must be a whole number of at least 0 (got {self.lr_warmup_steps!r}).",
        )
        if is_int(self.max_steps) and is_int(self.lr_warmup_steps):
            check(
                self.lr_warmup_steps <= self.max_steps,
                f"lr_warmup_steps ({self.lr_warmup_steps}) cannot exceed max_steps "
                f"({self.max_steps}).",
            )
        check(
            self.snr_gamma is None or (is_number(self.snr_gamma) and 0 < self.snr_gamma <= 100),
            f"snr_gamma must be empty (off) or above 0 and at most 100 (got {self.snr_gamma!r}).",
        )
        check(
            is_number(self.noise_offset) and 0 <= self.noise_offset <= 1,
            f"noise_offset must be between 0 and 1 (got {self.noise_offset!r}).",
        )
        check(
            self.mixed_precision in MIXED_PRECISIONS,
            f"mixed_precision must be one of {', '.join(MIXED_PRECISIONS)} "
            f"(got {self.mixed_precision!r}).",
        )
        for name in (
            "gradient_checkpointing",
            "cache_latents",
            "cache_text_embeddings",
            "sample_latents",
        ):
            check(isinstance(getattr(self, name), bool), f"{name} must be true or false.")
        check(isinstance(self.random_flip, bool), "random_flip must be true or false.")
        if self.cache_text_embeddings and self.target == "unet_and_text_encoder":
            errors.append(
                "cache_text_embeddings needs a frozen text encoder, but target "
                "'unet_and_text_encoder' trains it: turn text-embedding caching off."
            )
        check(
            is_int(self.seed) and 0 <= self.seed < 2**32,
            f"seed must be a whole number from 0 to 4294967295 (got {self.seed!r}).",
        )
        check(
            is_int(self.epochs) and 1 <= self.epochs <= 10_000,
            f"epochs must be between 1 and 10000 (got {self.epochs!r}).",
        )
        check(
            self.max_steps is None or (is_int(self.max_steps) and 1 <= self.max_steps <= 1_000_000),
            f"max_steps must be empty or between 1 and 1000000 (got {self.max_steps!r}).",
        )
        check(
            is_int(self.checkpoint_every_epochs) and self.checkpoint_every_epochs >= 1,
            "checkpoint_every_epochs must be a whole number of at least 1 "
            f"(got {self.checkpoint_every_epochs!r}).",
        )
        for name, low in (
            ("checkpointing_steps", 0),
            ("max_checkpoints", 1),
            ("keep_last_checkpoints", 0),
        ):
            value = getattr(self, name)
            check(
                is_int(value) and value >= low,
                f"{name} must be a whole number of at least {low} (got {value!r}).",
            )
        check(
            all(isinstance(p, str) and p.strip() for p in self.validation_prompts)
            and len(self.validation_prompts) <= 16,
            "validation_prompts must be at most 16 non-empty texts.",
        )
        check(
            is_int(self.validation_seed) and 0 <= self.validation_seed < 2**32,
            "validation_seed must be a whole number from 0 to 4294967295 "
            f"(got {self.validation_seed!r}).",
        )
        check(
            is_int(self.validation_steps) and 1 <= self.validation_steps <= 200,
            f"validation_steps must be between 1 and 200 (got {self.validation_steps!r}).",
        )
        check(
            is_number(self.validation_guidance_scale) and 1 <= self.validation_guidance_scale <= 30,
            "validation_guidance_scale must be between 1 and 30 "
            f"(got {self.validation_guidance_scale!r}).",
        )
        check(
            self.validation_size is None
            or (
                is_int(self.validation_size)
                and 32 <= self.validation_size <= 2048
                and self.validation_size % 8 == 0
            ),
            "validation_size must be empty or a multiple of 8 between 32 and 2048 "
            f"(got {self.validation_size!r}).",
        )
        return errors

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["validation_prompts"] = list(self.validation_prompts)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraTrainingConfig:
        """Build from JSON. Unknown keys raise ValueError naming them (a typo must not vanish)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"Unknown training settings: {', '.join(unknown)}.")
        return cls(**data)

    def replace(self, **changes: Any) -> LoraTrainingConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)

    def config(self, **overrides: Any) -> LoraTrainingConfig:
        return LoraTrainingConfig.from_dict({**self.settings, **overrides})


PRESETS: dict[str, Preset] = {
    "atlas-000": Preset(
        key="atlas-000",
        title="Atlas silk patterns (U-Net LoRA)",
        description=(
            "Paper 000_799139077b62291c: LoRA on the U-Net attention of SD 1.5 for 103 Uyghur "
            "Atlas silk patterns; best at epoch 100, batch size 2, U-Net learning rate 8e-4 "
            "(trained on an RTX 2060). Resolution and rank are not given in the paper: "
            "512 px and rank 4 here."
        ),
        settings={
            "target": "unet_attention",
            "resolution": 512,
            "epochs": 100,
            "train_batch_size": 2,
            "unet_lr": 8e-4,
            "rank": 4,
            "alpha": 4.0,
            "optimizer": "adamw",
            "checkpoint_every_epochs": 10,
        },
    ),
    "gazetteer-001": Preset(
        key="gazetteer-001",
        title="Gazetteer landscapes (U-Net cross-attention + text encoder, trigger [U])",
        description=(
            "Paper 001_465742bc70709bdb: LoRA on the U-Net cross-attention and the text encoder "
            "of SD 1.5 for 246 landscape paintings with the trigger token [U]; 512x512, 15 "
            "epochs, batch size 2, AdamW 8-bit; validation DDIM 35 steps, CFG 7. The paper "
            "omits the learning rate: kohya's defaults 1e-4 (U-Net) / 5e-5 (text encoder) here."
        ),
        settings={
            "target": "unet_and_text_encoder",
            "resolution": 512,
            "epochs": 15,
            "train_batch_size": 2,
            "optimizer": "adamw8bit",
            "unet_lr": 1e-4,
            "text_encoder_lr": 5e-5,
            "trigger_token": "[U]",
            "cache_text_embeddings": False,
            "rank": 4,
            "alpha": 4.0,
            "checkpoint_every_epochs": 5,
            "validation_steps": 35,
            "validation_guidance_scale": 7.0,
        },
    ),
}


def preset_config(key: str, **overrides: Any) -> LoraTrainingConfig:
    """The preset's config with some settings replaced; KeyError for an unknown preset."""
    return PRESETS[key].config(**overrides)


def trigger_token_error(token: str) -> str | None:
    """Why ``token`` cannot be a trigger (with the fix), or None. Empty means no trigger."""
    if not token or token == PAPER_TRIGGER or TRIGGER_PATTERN.fullmatch(token):
        return None
    fixed = "".join(re.findall(r"[\w-]+", token)).strip("_-")
    advice = f"use {fixed!r}" if fixed else "use a made-up word such as 'qxls'"
    return (
        f"trigger_token {token!r} must be one word of letters, digits or hyphens, without "
        f"spaces, commas or brackets (or exactly {PAPER_TRIGGER!r}, the papers' form): {advice}."
    )


def prediction_type_error(prediction_type: str) -> str | None:
    """Why a base model whose scheduler predicts ``prediction_type`` cannot be trained."""
    if prediction_type in PREDICTION_TYPES:
        return None
    return (
        f"its scheduler's prediction_type is {prediction_type!r}; training supports "
        f"{' and '.join(PREDICTION_TYPES)} only (the loss target would be wrong)."
    )


def apply_trigger(caption: str, trigger_token: str) -> str:
    """``"[U], caption"`` as 001_465742bc70709bdb prompts; unchanged when already present."""
    if not trigger_token or caption.startswith(trigger_token):
        return caption
    return f"{trigger_token}, {caption}" if caption else trigger_token
