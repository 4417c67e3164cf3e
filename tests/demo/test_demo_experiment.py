"""The demo experiment's settings and metric protocol (the 2-minute run itself is a command)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from demo.experiment import (
    DEMO_DATA_SETTINGS,
    SSIM_VARIANTS,
    DemoExperiment,
    _metrics,
    check_metrics,
    demo_lora_config,
    demo_split,
    format_check_table,
    format_table,
    reference_scores,
)
from generation.diffusion.config import preset_config


def test_demo_lora_config_is_the_atlas_000_preset_scaled_to_the_cpu():
    config = demo_lora_config()
    preset = preset_config("atlas-000")
    assert config.validate() == []
    # The paper's figures are kept: epoch 100, batch 2, U-Net lr 8e-4, a U-Net-only LoRA.
    assert (config.epochs, config.train_batch_size, config.unet_lr) == (100, 2, 8e-4)
    assert (preset.epochs, preset.train_batch_size, preset.unet_lr) == (100, 2, 8e-4)
    assert config.target.startswith("unet") and not config.trains_text_encoder
    assert config.resolution == DEMO_DATA_SETTINGS["size"]


def test_held_out_images_are_not_training_images():
    train, heldout = demo_split()
    assert len(train) == DEMO_DATA_SETTINGS["n_train"]
    assert len(heldout) == DEMO_DATA_SETTINGS["n_heldout"]
    train_pixels = [np.asarray(s.image.convert("RGB")) for s in train]
    for sample in heldout:
        pixels = np.asarray(sample.image.convert("RGB"))
        assert pixels.shape == (DEMO_DATA_SETTINGS["size"],) * 2 + (3,)
        assert sample.key not in {s.key for s in train}
        assert all(not np.array_equal(pixels, t) for t in train_pixels)


def test_metrics_rank_a_closer_image_better_on_all_three():
    rng = np.random.default_rng(0)
    original = np.zeros((64, 64, 3), np.uint8)
    original[:, 16:32] = (200, 30, 40)  # vertical warp bands
    original[:, 40:48] = (240, 200, 60)
    noisy = np.clip(original + rng.normal(0, 20, original.shape), 0, 255).astype(np.uint8)
    wrong = rng.integers(0, 256, original.shape, dtype=np.uint8)

    with np.errstate(divide="ignore"):  # PSNR of identical images is infinite
        same = _metrics(original, original)
    assert same["mse"] == 0 and math.isinf(same["psnr"]) and same["ssim"] == 1.0
    close, far = _metrics(noisy, original), _metrics(wrong, original)
    assert close["mse"] < far["mse"]
    assert close["psnr"] > far["psnr"]
    assert close["ssim"] > far["ssim"]
    # PSNR follows from MSE at data_range 255.
    assert math.isclose(close["psnr"], 10 * math.log10(255**2 / close["mse"]), rel_tol=1e-9)


def test_unet_all_target_adapts_every_block_layer_but_not_the_attention_pooling():
    import re

    import torch
    from diffusers import UNet2DConditionModel

    from demo.model_recipe import DEFAULT_OUT_DIR

    pattern = demo_lora_config().unet_target_modules
    assert isinstance(pattern, str)  # peft: one full-match regex
    unet = UNet2DConditionModel.from_pretrained(DEFAULT_OUT_DIR / "unet")
    layers = [
        name
        for name, module in unet.named_modules()
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d)
    ]
    adapted = {name for name in layers if re.fullmatch(pattern, name)}
    for wanted in (
        "time_embedding.linear_1",
        "add_embedding.proj",  # the text path into the time embedding
        "mid_block.attentions.0.transformer_blocks.0.attn2.to_k",
        "mid_block.attentions.0.transformer_blocks.0.ff.net.2",
        "mid_block.resnets.0.conv1",
        "down_blocks.0.attentions.0.proj_in",
    ):
        assert wanted in adapted
    assert not {n for n in adapted if ".pool." in n}
    assert {"conv_in", "conv_out"}.isdisjoint(adapted)


def test_reference_rows_show_what_ssim_rewards_on_the_atlas_corpus():
    # The documented finding behind the SSIM bar (docs/demo-experiment.md): real Atlas cloth in
    # another layout scores about zero SSIM against a held-out original, a featureless image of
    # the original's mean colour clearly more.
    train, heldout = demo_split()
    ref = reference_scores(train, heldout)
    assert set(ref) == {"real_atlas", "flat"}
    assert abs(ref["real_atlas"]["ssim"]) < 0.03
    assert ref["flat"]["ssim"] > ref["real_atlas"]["ssim"] + 0.05
    for row in ref.values():
        assert math.isfinite(row["psnr"]) and row["mse"] > 0

    # The command's table prints them under the two models, marked as references.
    results = {
        "table": {
            "base": {"mse": 11303.25, "psnr": 7.641, "ssim": 0.04751},
            "lora": {"mse": 10604.2, "psnr": 7.95, "ssim": 0.0297},
        },
        "reference": ref,
    }
    lines = format_table(results).splitlines()
    assert lines[2] == "| base (demo model) | 11303.2 | 7.64 | 0.0475 |"
    assert lines[4].startswith("| *reference:* real Atlas silk")
    assert lines[4].endswith(f"| {ref['real_atlas']['ssim']:.4f} |")
    assert lines[5].startswith("| *reference:* flat image")
    # The fit to the training captions (how the settings were chosen) follows the table.
    results["train_fit"] = {"mse": 7791.47, "psnr": 9.6231, "ssim": 0.11194}
    results["settings"] = {"fit_captions": 6, "fit_seeds": [0, 1, 2]}
    assert format_table(results).splitlines()[-1] == (
        "Fit to the training captions (LoRA, first 6 captions x seeds 0, 1, 2): "
        "MSE 7791.5 / PSNR 9.62 / SSIM 0.1119"
    )
    # Results written before the reference rows and the fit existed still print.
    del results["reference"], results["train_fit"]
    assert len(format_table(results).splitlines()) == 4


def test_metric_check_scores_base_real_atlas_and_flat_images_under_four_ssim_settings():
    # manage.py demo_experiment --check-metrics N, on the experiment's own 4 held-out originals
    # (4 DDIM steps keep it quick; the base row is not asserted on).
    rows = check_metrics(4, exp=replace(DemoExperiment(), steps=4))
    assert [r["pairs"] for r in rows] == [4, 4 * DEMO_DATA_SETTINGS["n_train"], 4]
    base, real, flat = rows
    assert base["kind"].startswith("base (demo model)")
    labels = [label for label, *_ in SSIM_VARIANTS]
    assert all(-1 <= base[label] <= 1 for label in labels)
    # The real/flat rows are the experiment's reference rows, computed the same way.
    ref = reference_scores(*demo_split())
    assert math.isclose(real["MSE"], ref["real_atlas"]["mse"], rel_tol=1e-9)
    assert math.isclose(real[labels[0]], ref["real_atlas"]["ssim"], rel_tol=1e-9)
    assert math.isclose(flat[labels[0]], ref["flat"]["ssim"], rel_tol=1e-9)
    # Under every SSIM setting, real Atlas cloth scores below a flat image on these originals:
    # the finding is not an artefact of one window or of colour vs grey.
    for label in labels:
        assert flat[label] > real[label] + 0.05, label
    lines = format_check_table(rows).splitlines()
    assert len(lines) == 5 and all(label in lines[0] for label in labels)


def test_protocols_rank_the_style_over_a_flat_average_with_intervals_over_seeds():
    # Reproduction and distribution, the demo experiment's own functions, on made-up "models":
    # one that redraws its originals with a little noise (per seed), one that draws flat grey.
    from demo.experiment import _distribution_protocol, _pixel_protocol, ci95, format_protocols

    train, heldout = demo_split()
    rng = np.random.default_rng(0)
    seeds = (0, 1, 2)

    def noisy(s):
        px = np.asarray(s.image.convert("RGB"), dtype=np.float64)
        return np.clip(px + rng.normal(0, 12, px.shape), 0, 255).astype(np.uint8)

    grey = np.full((64, 64, 3), 128, np.uint8)
    samples = [*train[:3], *heldout]
    good = {(s.key, seed): noisy(s) for s in samples for seed in seeds}
    flat = {(s.key, seed): grey for s in samples for seed in seeds}
    rep = {m: _pixel_protocol(i, train[:3], seeds) for m, i in (("base", flat), ("lora", good))}
    assert rep["lora"]["mse"] < rep["base"]["mse"] and rep["lora"]["ssim"] > rep["base"]["ssim"]
    assert rep["lora"]["psnr_over_seeds"]["n"] == 3 and rep["lora"]["psnr_over_seeds"]["ci95"] > 0
    dist = {
        m: _distribution_protocol(i, heldout, seeds) for m, i in (("base", flat), ("lora", good))
    }
    assert dist["lora"]["swd_x1e3"] < 0.5 * dist["base"]["swd_x1e3"]
    assert dist["lora"]["n_generated"] == len(heldout) * 3
    assert ci95([1.0]) == {"mean": 1.0, "ci95": 0.0, "n": 1}
    text = format_protocols({"protocols": {"reproduction": rep, "distribution": dist}, "bars": {}})
    assert "| base + Atlas LoRA |" in text and "±" in text
