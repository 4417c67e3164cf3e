"""LoraTrainingConfig: presets of the papers, JSON round trip, every refused setting."""

import pytest

from generation.diffusion.config import (
    PRESETS,
    LoraTrainingConfig,
    apply_trigger,
    preset_config,
)


def test_presets_follow_the_papers_and_are_valid():
    atlas = preset_config("atlas-000")
    assert (atlas.target, atlas.epochs, atlas.train_batch_size, atlas.unet_lr) == (
        "unet_attention",
        100,
        2,
        8e-4,
    )
    gazetteer = preset_config("gazetteer-001")
    assert gazetteer.resolution == 512 and gazetteer.epochs == 15
    assert gazetteer.train_batch_size == 2 and gazetteer.optimizer == "adamw8bit"
    assert gazetteer.target == "unet_and_text_encoder" and gazetteer.trigger_token == "[U]"
    assert "000_799139077b62291c" in PRESETS["atlas-000"].description
    assert "001_465742bc70709bdb" in PRESETS["gazetteer-001"].description
    assert atlas.validate() == [] and gazetteer.validate() == []
    assert preset_config("atlas-000", resolution=256).resolution == 256


def test_json_round_trip_and_unknown_keys():
    config = preset_config("gazetteer-001", validation_prompts=["[U], a river"])
    assert LoraTrainingConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="Unknown training settings: learning_rat"):
        LoraTrainingConfig.from_dict({"learning_rat": 1e-4})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resolution": 500}, "resolution must be a multiple of 8"),
        ({"resolution": 16}, "resolution must be a multiple of 8"),
        ({"train_batch_size": 0}, "train_batch_size must be between 1 and 64"),
        ({"caption_dropout": 1.0}, "caption_dropout must be at least 0 and below 1"),
        ({"trigger_token": "x" * 65}, "trigger_token must be text of at most 64"),
        ({"rank": 0}, "rank must be between 1 and 256"),
        ({"rank": 4.5}, "rank must be between 1 and 256"),
        ({"alpha": 0}, "alpha must be above 0"),
        ({"dropout": -0.1}, "dropout must be at least 0 and below 1"),
        ({"target": "vae"}, "target must be one of unet_attention"),
        ({"unet_lr": 0}, "unet_lr must be above 0"),
        ({"text_encoder_lr": 1.0}, "text_encoder_lr must be above 0 and at most 0.1"),
        ({"optimizer": "sgd"}, "optimizer must be one of adamw, adamw8bit"),
        ({"adam_beta1": 1.0}, "adam_beta1 must be at least 0 and below 1"),
        ({"adam_beta2": -1}, "adam_beta2 must be at least 0 and below 1"),
        ({"adam_weight_decay": 2}, "adam_weight_decay must be between 0 and 1"),
        ({"adam_epsilon": 0}, "adam_epsilon must be above 0"),
        ({"max_grad_norm": 0}, "max_grad_norm must be above 0"),
        ({"lr_scheduler": "step"}, "lr_scheduler must be one of constant"),
        ({"lr_warmup_steps": -1}, "lr_warmup_steps must be a whole number"),
        ({"lr_warmup_steps": 20, "max_steps": 10}, "lr_warmup_steps (20) cannot exceed"),
        ({"snr_gamma": 0}, "snr_gamma must be empty (off) or above 0"),
        ({"noise_offset": 1.5}, "noise_offset must be between 0 and 1"),
        ({"mixed_precision": "fp8"}, "mixed_precision must be one of no, fp16, bf16"),
        ({"gradient_checkpointing": "yes"}, "gradient_checkpointing must be true or false"),
        ({"cache_latents": 1}, "cache_latents must be true or false"),
        ({"random_flip": None}, "random_flip must be true or false"),
        (
            {"target": "unet_and_text_encoder", "cache_text_embeddings": True},
            "cache_text_embeddings needs a frozen text encoder",
        ),
        ({"seed": -1}, "seed must be a whole number from 0"),
        ({"epochs": 0}, "epochs must be between 1 and 10000"),
        ({"max_steps": 0}, "max_steps must be empty or between 1"),
        ({"checkpoint_every_epochs": 0}, "checkpoint_every_epochs must be a whole number"),
        ({"validation_prompts": ("ok", " ")}, "validation_prompts must be at most 16 non-empty"),
        ({"validation_seed": 2**32}, "validation_seed must be a whole number"),
        ({"validation_steps": 0}, "validation_steps must be between 1 and 200"),
        ({"validation_guidance_scale": 0.5}, "validation_guidance_scale must be between 1"),
        ({"validation_size": 30}, "validation_size must be empty or a multiple of 8"),
    ],
)
def test_each_out_of_range_setting_is_refused_with_its_message(changes, message):
    errors = LoraTrainingConfig(**changes).validate()
    assert len(errors) == 1, errors
    assert errors[0].startswith(message), errors


def test_several_errors_are_all_reported():
    errors = LoraTrainingConfig(rank=0, epochs=0, optimizer="sgd").validate()
    assert len(errors) == 3


def test_trigger_is_prepended_once():
    assert apply_trigger("a river", "[U]") == "[U], a river"
    assert apply_trigger("[U], a river", "[U]") == "[U], a river"
    assert apply_trigger("", "[U]") == "[U]"
    assert apply_trigger("a river", "") == "a river"
