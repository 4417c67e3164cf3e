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


# --- SD 1.5 widths, triggers, prediction types, refusals before loading, cleanup ---


def test_8bit_optimizer_state_at_sd15_widths_is_checkpointed_and_resumes_bit_exact(tmp_path):
    """Rank 4 on a 1280-wide projection is 5,120 elements: bitsandbytes keeps 8-bit state and
    shares qmap1/qmap2 across parameters, which safetensors refused to save."""
    import bitsandbytes as bnb
    import torch

    from generation.diffusion.train import _load_checkpoint, _save_checkpoint

    config = tiny_config(optimizer="adamw8bit")

    def fresh():
        torch.manual_seed(0)
        params = {f"unet.p{i}": torch.nn.Parameter(torch.randn(4, 1280)) for i in range(3)}
        params["unet.small"] = torch.nn.Parameter(torch.randn(4, 16))  # 32-bit state
        return params, bnb.optim.AdamW8bit(list(params.values()), lr=1e-2)

    def step(params, optimizer, index):
        grads = torch.Generator().manual_seed(100 + index)
        for p in params.values():
            p.grad = torch.randn(p.shape, generator=grads)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    whole, whole_opt = fresh()
    for index in range(6):
        step(whole, whole_opt, index)

    first, first_opt = fresh()
    for index in range(3):
        step(first, first_opt, index)
    assert first_opt.state[first["unet.p0"]]["state1"].dtype == torch.uint8  # really 8-bit
    common = {"config": config, "fingerprint": "f", "generator": torch.Generator(), "device": "cpu"}
    path = _save_checkpoint(
        tmp_path, named_params=first, optimizer=first_opt, step=3, epoch=1, loss_log=[], **common
    )
    stored = tensors(path)
    assert sum(k.endswith(".qmap1") for k in stored) == 1  # the shared map is stored once

    resumed, resumed_opt = fresh()
    _load_checkpoint(path, named_params=resumed, optimizer=resumed_opt, **common)
    for index in range(3, 6):
        step(resumed, resumed_opt, index)
    for name in whole:
        assert torch.equal(whole[name], resumed[name]), name


@pytest.mark.parametrize(
    ("trigger", "fix"),
    [("qx ls style", "use 'qxlsstyle'"), ("qxls,", "use 'qxls'"), ("<qxls>", "use 'qxls'")],
)
def test_malformed_triggers_are_refused_with_the_fix(tmp_path, trigger, fix):
    with pytest.raises(ValueError, match="without spaces, commas or brackets") as refused:
        train_lora(
            tiny_config(trigger_token=trigger),
            tiny_examples(1),
            base_model="/nowhere",
            output_dir=tmp_path,
        )
    assert fix in str(refused.value)


def test_the_papers_trigger_form_and_plain_words_are_accepted():
    for trigger in ("[U]", "qxls", "shuntian-style", "国画", ""):
        assert tiny_config(trigger_token=trigger).validate() == [], trigger


def _base_predicting(base, folder, prediction_type):
    import json
    import shutil

    shutil.copytree(base, folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": prediction_type}))
    return folder


def test_an_unsupported_prediction_type_is_refused_before_training(base, tmp_path):
    sample = _base_predicting(base, tmp_path / "sample-model", "sample")
    events = []
    with pytest.raises(ValueError, match="prediction_type is 'sample'; training supports"):
        train_lora(
            tiny_config(),
            tiny_examples(2),
            base_model=sample,
            output_dir=tmp_path / "run",
            callback=events.append,
        )
    assert events == [] and not (tmp_path / "run" / "checkpoints").exists()


def test_v_prediction_trains_on_the_velocity(base, tmp_path):
    """The same weights and data give another loss when the base model predicts v."""
    v_model = _base_predicting(base, tmp_path / "v-model", "v_prediction")
    config = tiny_config(max_steps=2)
    eps = train_lora(config, tiny_examples(2), base_model=base, output_dir=tmp_path / "eps")
    v = train_lora(config, tiny_examples(2), base_model=v_model, output_dir=tmp_path / "v")
    assert v.status == eps.status == "completed"
    assert v.loss_log[0]["loss"] != eps.loss_log[0]["loss"]


def test_resume_is_refused_before_the_model_is_loaded(base, tmp_path):
    """The checkpoint's header is read first: a base model that cannot even load is never
    reached when the settings have changed."""
    train_lora(tiny_config(epochs=1), tiny_examples(2), base_model=base, output_dir=tmp_path)
    with pytest.raises(ValueError, match="settings changed since it was written: rank"):
        train_lora(
            tiny_config(epochs=1, rank=8),
            tiny_examples(2),
            base_model=tmp_path / "no-such-model",
            output_dir=tmp_path,
        )


def test_the_rss_sampler_thread_stops_when_a_run_raises(tmp_path):
    import threading

    before = set(threading.enumerate())
    with pytest.raises(ValueError, match="no such file or folder"):
        train_lora(tiny_config(), tiny_examples(1), base_model="/nowhere", output_dir=tmp_path)
    assert [t for t in threading.enumerate() if t not in before and t.is_alive()] == []
