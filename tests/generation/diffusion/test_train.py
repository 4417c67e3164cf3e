"""train_lora on the tiny SD-format model: learning, checkpoints, resume, cancel, progress."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.lora_files import load_lora_into
from generation.diffusion.pipeline import load_base_pipeline
from generation.diffusion.train import evaluation_loss, train_lora
from tests.generation.diffusion.lora_helpers import (
    one_torch_thread,
    save_tiny_base,
    tiny_examples,
    write_png_examples,
)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("tiny-base") / "model")


def tensors(path):
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}


def tiny_config(**changes) -> LoraTrainingConfig:
    settings = {
        "resolution": 32,
        "rank": 4,
        "alpha": 4.0,
        "train_batch_size": 2,
        "unet_lr": 1e-3,
        "epochs": 2,
        "checkpoint_every_epochs": 1,
    }
    return LoraTrainingConfig(**{**settings, **changes})


def test_training_lowers_the_loss_on_its_data(base, tmp_path):
    """Measured with fixed noise and timesteps (evaluation_loss), before and after."""
    examples = tiny_examples(4)
    before = evaluation_loss(load_base_pipeline(base), examples, resolution=32)
    config = tiny_config(rank=8, alpha=8.0, unet_lr=3e-2, train_batch_size=4, max_steps=20)
    result = train_lora(config, examples, base_model=base, output_dir=tmp_path, resume=False)
    assert result.status == "completed" and len(result.loss_log) == 20
    trained = load_base_pipeline(base)
    load_lora_into(trained, result.files.diffusers_path)
    after = evaluation_loss(trained, examples, resolution=32)
    assert after < 0.95 * before, (before, after)


def test_files_progress_and_validation_images(base, tmp_path):
    events = []
    config = tiny_config(
        validation_prompts=("a striped silk pattern",), validation_steps=3, unet_lr=2e-2
    )
    examples = write_png_examples(tmp_path / "images", 4)  # paths, not PIL images
    result = train_lora(
        config, examples, base_model=base, output_dir=tmp_path / "run", callback=events.append
    )
    steps = [e for e in events if e.event == "step"]
    assert [e.step for e in steps] == [1, 2, 3, 4]
    assert [e.epoch for e in steps] == [1, 1, 2, 2]
    assert all(e.total_steps == 4 and e.total_epochs == 2 for e in steps)
    assert all(e.loss > 0 and e.lr == pytest.approx(2e-2) for e in steps)
    assert steps[-1].eta_seconds == 0 and steps[0].eta_seconds >= 0
    assert [e.event for e in events if e.event != "step"] == [
        "checkpoint",
        "validation",
        "checkpoint",
        "validation",
        "done",
    ]
    assert len(result.checkpoints) == 2 and result.files is not None
    assert result.peak_memory_bytes > 0 and result.peak_memory_kind == "cpu_rss_peak"
    # Validation: base images once, LoRA images at each checkpoint, same prompt and seed.
    assert set(result.validation_images) == {"base", "step-000002", "step-000004"}
    base_image = np.asarray(Image.open(result.validation_images["base"][0]))
    lora_image = np.asarray(Image.open(result.validation_images["step-000004"][0]))
    assert base_image.shape == lora_image.shape == (32, 32, 3)
    assert not np.array_equal(base_image, lora_image)
    # The "base" image is what the untouched base model makes with that prompt and seed.
    import torch
    from diffusers import DDIMScheduler

    pipe = load_base_pipeline(base)
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    plain = pipe(
        "a striped silk pattern",
        num_inference_steps=3,
        guidance_scale=7.0,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(0),
    ).images[0]
    assert np.array_equal(np.asarray(plain), base_image)


@pytest.mark.parametrize(
    "changes",
    [
        {"random_flip": True, "caption_dropout": 0.3, "noise_offset": 0.05, "snr_gamma": 5.0},
        {
            "optimizer": "adamw8bit",
            "target": "unet_and_text_encoder",
            "cache_text_embeddings": False,
            "cache_latents": False,
            "lr_scheduler": "cosine",
            "lr_warmup_steps": 2,
            "dropout": 0.1,
            "gradient_checkpointing": True,
        },
    ],
    ids=["augmentations", "text-encoder-8bit-uncached"],
)
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(base, tmp_path, changes):
    config = tiny_config(
        epochs=4,
        checkpoint_every_epochs=2,
        validation_prompts=("a pattern",),
        validation_steps=2,
        **changes,
    )
    examples = tiny_examples(4)
    whole = train_lora(config, examples, base_model=base, output_dir=tmp_path / "whole")

    # Interrupted during epoch 4 (step 7): the newest checkpoint is the one after epoch 2.
    stopped = train_lora(
        config,
        examples,
        base_model=base,
        output_dir=tmp_path / "split",
        should_stop=lambda: sum(e.event == "step" for e in seen) >= 6,
        callback=(seen := []).append,
    )
    assert stopped.status == "cancelled" and stopped.global_step == 6 and stopped.files is None
    assert [p.rsplit("/", 1)[-1] for p in stopped.checkpoints] == ["checkpoint-000004.safetensors"]

    resumed_events = []
    resumed = train_lora(
        config,
        examples,
        base_model=base,
        output_dir=tmp_path / "split",
        callback=resumed_events.append,
    )
    assert resumed.resumed_from_step == 4 and resumed.global_step == 8
    assert [e.step for e in resumed_events if e.event == "step"] == [5, 6, 7, 8]
    assert [e.epoch for e in resumed_events if e.event == "step"] == [3, 3, 4, 4]
    assert resumed.loss_log == whole.loss_log
    for key in ("diffusers_path", "kohya_path"):
        a = tensors(getattr(whole.files, key))
        b = tensors(getattr(resumed.files, key))
        assert a.keys() == b.keys()
        assert all(a[k].equal(b[k]) for k in a), key
    if changes.get("target") == "unet_and_text_encoder":
        assert any(k.startswith("text_encoder.") for k in tensors(whole.files.diffusers_path))


def test_cancel_before_the_first_step_writes_nothing(base, tmp_path):
    events = []
    result = train_lora(
        tiny_config(),
        tiny_examples(2),
        base_model=base,
        output_dir=tmp_path,
        should_stop=lambda: True,
        callback=events.append,
    )
    assert result.status == "cancelled" and result.global_step == 0
    assert result.files is None and result.checkpoints == []
    assert [e.event for e in events] == ["cancelled"]
    assert not (tmp_path / "lora").exists()


def test_max_steps_wins_over_epochs(base, tmp_path):
    result = train_lora(
        tiny_config(epochs=50, max_steps=3),
        tiny_examples(4),
        base_model=base,
        output_dir=tmp_path,
    )
    assert result.global_step == 3 and result.total_steps == 3
    assert result.total_epochs == 2 and result.epochs_completed == 2


def test_resume_refuses_changed_settings_or_data(base, tmp_path):
    train_lora(tiny_config(epochs=1), tiny_examples(2), base_model=base, output_dir=tmp_path)
    with pytest.raises(ValueError, match="settings changed since it was written: rank"):
        train_lora(
            tiny_config(epochs=1, rank=8), tiny_examples(2), base_model=base, output_dir=tmp_path
        )
    with pytest.raises(ValueError, match="training images or captions have changed"):
        train_lora(tiny_config(epochs=1), tiny_examples(3), base_model=base, output_dir=tmp_path)
    # resume=False starts over instead.
    fresh = train_lora(
        tiny_config(epochs=1, rank=8),
        tiny_examples(2),
        base_model=base,
        output_dir=tmp_path,
        resume=False,
    )
    assert fresh.resumed_from_step is None and fresh.status == "completed"


def test_invalid_settings_are_refused_before_loading(tmp_path):
    with pytest.raises(ValueError, match="rank must be between 1 and 256"):
        train_lora(
            tiny_config(rank=0), tiny_examples(1), base_model="/nowhere", output_dir=tmp_path
        )
