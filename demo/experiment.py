"""The demo experiment: paper 000_799139077b62291c's table in miniature, on a CPU.

1. Atlas demo set (``corpus.atlas_samples`` at 64 px): the first ``n_train`` for training, the
   next ``n_heldout`` held out.
2. A U-Net LoRA trained with the ``atlas-000`` preset (batch 2, U-Net lr 8e-4, AdamW) scaled
   to the CPU and to the tiny demo base model: 64 px instead of 512, 24 images instead of 103,
   the paper's 5,200 optimizer steps, rank 16 on every U-Net block layer (``DEMO_LORA_SETTINGS``).
3. Base and LoRA images with identical seeds (0-3), DDIM 35 steps, CFG 7, scored under the
   study report's three protocols (evaluation/selectors.py), with 95 % confidence intervals
   over the seeds (Student t on the per-seed figures):
   * *reproduction*: the LoRA's own training captions, each image against its own original,
     MSE, PSNR and SSIM (scikit-image, ``channel_axis=-1, data_range=255``): can the LoRA
     redraw what it was taught? The LoRA must beat the base on all three;
   * *distribution*: the images of ``n_distribution`` held-out captions as a set against those
     held-out originals, by evaluation/distribution.py's multi-scale sliced Wasserstein distance
     on patches and colour distance (no pretrained network): does the LoRA draw the style? The
     LoRA must beat the base by a clear margin (``distribution_bar``);
   * *held-out pixel figures*: each of the first ``n_heldout`` held-out captions' images against
     its one original, reported as they are beside their reference rows (real Atlas silk in
     another layout; a flat image of the mean colour): the caption does not tell the random
     band layout, so these reward a flat average (docs/demo-experiment.md).
4. A picture grid: held-out original, base, LoRA per row.

    python manage.py demo_experiment          # or: python -m demo.experiment
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demo.corpus import atlas_samples
from demo.model_recipe import DEFAULT_OUT_DIR

REPO = Path(__file__).resolve().parents[1]
DEFAULT_GRID = REPO / "docs" / "img" / "demo-experiment-grid.png"

# The experiment's settings, shared with the "through the apps" version of the workflow.
# LoRA: overrides of the atlas-000 preset (``preset_config("atlas-000", **DEMO_LORA_SETTINGS)``).
DEMO_LORA_SETTINGS: dict[str, Any] = {
    "resolution": 64,
    "epochs": 100,  # the paper's best epoch; batch 2 and U-Net lr 8e-4 come from the preset
    # Scaled by optimizer steps, not epochs: the paper made ceil(103 / 2) * 100 = 5,200 steps;
    # 100 epochs of 24 images would be only 1,200, too few for the LoRA to learn the palette.
    "max_steps": 5200,
    # The demo base model is ~1,000x smaller than SD 1.5: its attention alone (the preset's
    # rank-4 to_q/k/v/out) cannot carry a new palette, so every U-Net layer gets a rank-16 LoRA
    # ("U-Net LoRA" as in the paper; the text encoder stays frozen).
    "target": "unet_all",
    "rank": 16,
    "alpha": 16.0,
    # The demo VAE's posterior std is untrained (~1, as large as the latents themselves): drawn
    # latents are mostly noise and the LoRA learns blotches. Train on the posterior mean, as the
    # base U-Net was.
    "sample_latents": False,
    "checkpoint_every_epochs": 100,
    # Not in the paper: one caption in ten is dropped so the LoRA also learns the unconditional
    # branch that classifier-free guidance extrapolates from.
    "caption_dropout": 0.1,
    # Not in the paper: offset noise (diffusers' --noise_offset). Plain noise never hides a
    # 16x16 latent's mean colour, so the model learns to keep the starting noise's: the seed,
    # not the caption, picks the palette. Chosen by the fit to the training captions (0.3 best
    # of 0 / 0.1 / 0.3 on MSE, PSNR and SSIM), not on the held-out set.
    "noise_offset": 0.3,
    "validation_prompts": (),
}
# Data split and generation: corpus.atlas_samples(n_train + n_heldout, size, corpus_seed),
# the first n_train train, the rest are held out; DDIM steps, CFG and seeds fixed in advance.
DEMO_DATA_SETTINGS: dict[str, Any] = {"n_train": 24, "n_heldout": 4, "size": 64, "corpus_seed": 0}
DEMO_GENERATION_SETTINGS: dict[str, Any] = {"steps": 35, "cfg": 7.0, "seeds": (0, 1, 2, 3)}


def demo_lora_config(**overrides: Any):
    """The demo LoRA's LoraTrainingConfig: atlas-000 + DEMO_LORA_SETTINGS (+ ``overrides``)."""
    from generation.diffusion.config import preset_config

    return preset_config("atlas-000", **{**DEMO_LORA_SETTINGS, **overrides})


def demo_split(n_train: int | None = None, n_heldout: int | None = None):
    """(train, held-out) Atlas samples of the demo experiment."""
    d = DEMO_DATA_SETTINGS
    n_train = d["n_train"] if n_train is None else n_train
    n_heldout = d["n_heldout"] if n_heldout is None else n_heldout
    samples = atlas_samples(n_train + n_heldout, size=d["size"], seed=d["corpus_seed"])
    return samples[:n_train], samples[n_train:]


@dataclass(frozen=True)
class DemoExperiment:
    n_train: int = DEMO_DATA_SETTINGS["n_train"]
    n_heldout: int = DEMO_DATA_SETTINGS["n_heldout"]
    size: int = DEMO_DATA_SETTINGS["size"]
    corpus_seed: int = DEMO_DATA_SETTINGS["corpus_seed"]
    seeds: tuple[int, ...] = DEMO_GENERATION_SETTINGS["seeds"]
    epochs: int = DEMO_LORA_SETTINGS["epochs"]
    max_steps: int | None = DEMO_LORA_SETTINGS["max_steps"]  # wins over epochs when set
    steps: int = DEMO_GENERATION_SETTINGS["steps"]
    cfg: float = DEMO_GENERATION_SETTINGS["cfg"]
    noise_offset: float = DEMO_LORA_SETTINGS["noise_offset"]
    threads: int = 1  # one thread: two stall each other on a shared 2-core machine
    # Reproduction: the first ``repro_captions`` training captions x ``seeds`` (also how the
    # LoRA settings were chosen: never on the held-out set).
    repro_captions: int = 8
    # Distribution: held-out captions (the first ``n_heldout`` are the pixel protocol's) x seeds.
    n_distribution: int = 12
    # "A clear margin": the LoRA's SWD at most this share of the base's, and the two 95 %
    # intervals over seeds apart.
    distribution_bar: float = 0.8


def _metrics(made: np.ndarray, original: np.ndarray) -> dict[str, float]:
    from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

    return {
        "mse": float(mean_squared_error(original, made)),
        "psnr": float(peak_signal_noise_ratio(original, made, data_range=255)),
        "ssim": float(structural_similarity(original, made, channel_axis=-1, data_range=255)),
    }


def ci95(values) -> dict[str, float]:
    """Mean and the half-width of its 95 % confidence interval (Student t; 0 for one value)."""
    from scipy import stats

    v = np.asarray(list(values), dtype=np.float64)
    half = 0.0
    if len(v) > 1:
        half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return {"mean": float(v.mean()), "ci95": half, "n": len(v)}


def _pixel_protocol(
    images: dict[tuple[str, int], np.ndarray], samples: list, seeds: tuple[int, ...]
) -> dict[str, Any]:
    """Mean MSE, PSNR and SSIM of each (caption, seed) image against its own original; the
    per-seed means give the intervals."""
    per_seed = {
        seed: [_metrics(images[(s.key, seed)], _pixels(s)) for s in samples] for seed in seeds
    }
    out: dict[str, Any] = {}
    for m in ("mse", "psnr", "ssim"):
        out[m] = float(np.mean([r[m] for rows in per_seed.values() for r in rows]))
        out[f"{m}_over_seeds"] = ci95(np.mean([r[m] for r in rows]) for rows in per_seed.values())
    return out


def _distribution_protocol(
    images: dict[tuple[str, int], np.ndarray], samples: list, seeds: tuple[int, ...]
) -> dict[str, Any]:
    """evaluation.distribution.compare_sets of all the images (every seed) with the originals;
    per seed too, for the intervals."""
    from evaluation.distribution import compare_sets

    originals = [_pixels(s) for s in samples]
    pooled = compare_sets([images[(s.key, seed)] for seed in seeds for s in samples], originals)
    per_seed = [compare_sets([images[(s.key, seed)] for s in samples], originals) for seed in seeds]
    return {
        "swd_x1e3": pooled["swd_x1e3"],
        "swd_levels_x1e3": pooled["swd_levels_x1e3"],
        "colour_emd": pooled["colour_emd"],
        "n_generated": pooled["n_generated"],
        "n_references": pooled["n_references"],
        "swd_x1e3_over_seeds": ci95(r["swd_x1e3"] for r in per_seed),
        "colour_emd_over_seeds": ci95(r["colour_emd"] for r in per_seed),
    }


def _pixels(sample, size: int | None = None) -> np.ndarray:
    """A sample's RGB pixels, centre-cropped and resized to ``size`` as the metrics job does."""
    from evaluation.metrics import as_rgb_array  # plain numpy, like this module

    return as_rgb_array(sample.image, (size, size) if size else None)


def reference_scores(train: list, heldout: list) -> dict[str, dict[str, float]]:
    """Mean MSE, PSNR and SSIM of two kinds of image no model drew, against the held-out set.

    ``real_atlas``: every training image against every held-out original - real Atlas cloth,
    the style the LoRA should learn, in a layout the caption does not tell. ``flat``: one flat
    image of each original's own mean colour. Printed beside the models' rows so a reader sees
    what the metrics reward on this corpus (docs/demo-experiment.md, "What the metrics reward").
    """
    from evaluation.metrics import reference_summaries  # plain numpy, like this module

    rows = reference_summaries([_pixels(s) for s in heldout], [_pixels(t) for t in train])
    return {
        name: {"mse": r.mse_mean, "psnr": r.psnr_mean, "ssim": r.ssim_mean}
        for name, r in (("real_atlas", rows["others"]), ("flat", rows["flat"]))
    }


def _base_model_info(path: Path) -> dict[str, Any]:
    """What the base is: the recipe's settings when it is the demo model (honest labels)."""
    recipe = path / "recipe.json"
    info: dict[str, Any] = {"path": str(path)}
    if recipe.exists():
        data = json.loads(recipe.read_text(encoding="utf-8"))
        info["demo_model"] = {k: data.get(k) for k in ("settings", "corpus_sha256")}
        info["note"] = (
            "the tiny demo base model, trained on procedural images only: it cannot learn real "
            "paintings (use SD 1.5 on a GPU for that)"
        )
    return info


def _render(pipe, prompt: str, seed: int, exp: DemoExperiment) -> np.ndarray:
    import torch

    image = pipe(
        prompt,
        num_inference_steps=exp.steps,
        guidance_scale=exp.cfg,
        generator=torch.Generator().manual_seed(seed),
    ).images[0]
    return np.asarray(image.convert("RGB"))


def _grid(rows: list[list[np.ndarray]], path: Path, scale: int = 2) -> None:
    from PIL import Image

    h, w = rows[0][0].shape[:2]
    pad = 4
    grid = Image.new(
        "RGB",
        (len(rows[0]) * (w * scale + pad) + pad, len(rows) * (h * scale + pad) + pad),
        "white",
    )
    for r, row in enumerate(rows):
        for c, arr in enumerate(row):
            tile = Image.fromarray(arr).resize((w * scale, h * scale), Image.Resampling.NEAREST)
            grid.paste(tile, (pad + c * (w * scale + pad), pad + r * (h * scale + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path)


def run_demo_experiment(
    out_dir: Path,
    *,
    base_model: Path = DEFAULT_OUT_DIR,
    grid_path: Path | None = DEFAULT_GRID,
    exp: DemoExperiment | None = None,
    progress: bool = True,
) -> dict:
    """Train, generate, measure. Returns (and writes to ``out_dir/results.json``) the table."""
    import torch
    from tqdm.auto import tqdm

    from generation.diffusion.lora_files import load_lora_into
    from generation.diffusion.pipeline import load_base_pipeline
    from generation.diffusion.train import train_lora

    exp = exp or DemoExperiment()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(exp.threads)
    started = time.monotonic()
    try:
        n_pool = max(exp.n_heldout, exp.n_distribution)
        samples = atlas_samples(exp.n_train + n_pool, size=exp.size, seed=exp.corpus_seed)
        train, pool = samples[: exp.n_train], samples[exp.n_train :]
        heldout = pool[: exp.n_heldout]  # as demo_split()
        repro = train[: exp.repro_captions]
        config = demo_lora_config(
            resolution=exp.size,
            epochs=exp.epochs,
            max_steps=exp.max_steps,
            checkpoint_every_epochs=exp.epochs,
            noise_offset=exp.noise_offset,
        )
        bar = tqdm(desc="LoRA (atlas-000 preset)", disable=not progress, unit="step")

        def on_progress(p) -> None:
            bar.total = p.total_steps
            if p.event == "step":
                bar.n = p.step
                bar.set_postfix(loss=f"{p.loss:.4f}" if p.loss is not None else "")
                bar.refresh()

        out_dir = Path(out_dir)
        result = train_lora(
            config,
            [(s.image, s.caption) for s in train],
            base_model=str(base_model),
            output_dir=out_dir / "run",
            callback=on_progress,
            resume=False,
            title="Atlas demo LoRA",
        )
        bar.close()

        pipe = load_base_pipeline(base_model)
        pipe.set_progress_bar_config(disable=True)
        # Every caption the protocols need, each with every seed, once per model.
        wanted = [*repro, *pool]
        jobs = [(s, seed) for s in wanted for seed in exp.seeds]
        render_bar = tqdm(
            total=2 * len(jobs), desc="images (base, LoRA)", disable=not progress, unit="img"
        )
        images: dict[str, dict[tuple[str, int], np.ndarray]] = {}
        for model in ("base", "lora"):
            if model == "lora":
                load_lora_into(pipe, result.files.diffusers_path)
            images[model] = {}
            for s, seed in jobs:
                images[model][(s.key, seed)] = _render(pipe, s.caption, seed, exp)
                render_bar.update()
        render_bar.close()

        protocols: dict[str, Any] = {
            "reproduction": {
                model: _pixel_protocol(images[model], repro, exp.seeds) for model in images
            },
            "distribution": {
                model: _distribution_protocol(images[model], pool[: exp.n_distribution], exp.seeds)
                for model in images
            },
            "held_out": {
                model: _pixel_protocol(images[model], heldout, exp.seeds) for model in images
            },
        }
        # What the distances give real Atlas silk the model never drew (the training images
        # against the held-out originals): the floor a perfect style learner would approach.
        from evaluation.distribution import compare_sets

        floor = compare_sets([_pixels(t) for t in train], [_pixels(s) for s in pool])
        protocols["distribution"]["reference_real_atlas"] = {
            k: floor[k] for k in ("swd_x1e3", "swd_levels_x1e3", "colour_emd")
        }
        protocols["held_out"]["reference"] = reference_scores(train, heldout)
        rep, dist = protocols["reproduction"], protocols["distribution"]
        b_swd, l_swd = dist["base"]["swd_x1e3_over_seeds"], dist["lora"]["swd_x1e3_over_seeds"]
        bars = {
            "reproduction_lora_beats_base_on_mse_psnr_ssim": (
                rep["lora"]["mse"] < rep["base"]["mse"]
                and rep["lora"]["psnr"] > rep["base"]["psnr"]
                and rep["lora"]["ssim"] > rep["base"]["ssim"]
            ),
            "distribution_lora_beats_base_by_a_clear_margin": (
                dist["lora"]["swd_x1e3"] <= exp.distribution_bar * dist["base"]["swd_x1e3"]
                and l_swd["mean"] + l_swd["ci95"] < b_swd["mean"] - b_swd["ci95"]
            ),
        }

        rows = []
        per_image = []
        for s in heldout:
            original = _pixels(s)
            for seed in exp.seeds:
                b, lo = images["base"][(s.key, seed)], images["lora"][(s.key, seed)]
                per_image.append(
                    {
                        "key": s.key,
                        "seed": seed,
                        "base": _metrics(b, original),
                        "lora": _metrics(lo, original),
                    }
                )
                if seed == exp.seeds[0]:
                    rows.append([original, b, lo])
        for s in repro[:2]:  # two training captions: the reproduction protocol's rows
            seed = exp.seeds[0]
            rows.append([_pixels(s), images["base"][(s.key, seed)], images["lora"][(s.key, seed)]])
        table = {
            model: {m: protocols["held_out"][model][m] for m in ("mse", "psnr", "ssim")}
            for model in ("base", "lora")
        }
        lora_wins = (
            table["lora"]["mse"] < table["base"]["mse"]
            and table["lora"]["psnr"] > table["base"]["psnr"]
            and table["lora"]["ssim"] > table["base"]["ssim"]
        )
        if grid_path is not None:
            _grid(rows, Path(grid_path))
        results = {
            "settings": {
                **exp.__dict__,
                "seeds": list(exp.seeds),
            },
            "base_model": _base_model_info(Path(base_model)),
            "lora_config": config.to_dict() if hasattr(config, "to_dict") else str(config),
            "train_steps": result.global_step,
            "final_train_loss": result.final_loss,
            "train_seconds": round(result.seconds, 1),
            "protocols": protocols,
            "bars": bars,
            "bars_met": all(bars.values()),
            "reproduction_captions": [s.caption for s in repro],
            "distribution_captions": [s.caption for s in pool[: exp.n_distribution]],
            "heldout_captions": [s.caption for s in heldout],
            # The held-out pixel figures under their old names (the study report's "held-out").
            "table": table,
            "lora_beats_base_on_all_three": lora_wins,
            "reference": protocols["held_out"]["reference"],
            "per_image": per_image,
            "grid": str(grid_path) if grid_path else None,
            "total_seconds": round(time.monotonic() - started, 1),
        }
        (out_dir / "results.json").write_text(
            json.dumps(results, indent=2) + "\n", encoding="utf-8"
        )
        return results
    finally:
        torch.set_num_threads(threads_before)


# SSIM settings of the metric check: (label, grey?, gaussian_weights, use_sample_covariance).
SSIM_VARIANTS: tuple[tuple[str, bool, bool, bool], ...] = (
    ("SSIM RGB 7x7 (the experiment's, skimage's default)", False, False, True),
    ("SSIM RGB gaussian", False, True, False),
    ("SSIM grey 7x7", True, False, True),
    ("SSIM grey gaussian (Wang et al. 2004)", True, True, False),
)


def _grey(images: np.ndarray) -> np.ndarray:
    return (images[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]


def check_metrics(
    n_heldout: int = 100,
    *,
    base_model: Path = DEFAULT_OUT_DIR,
    seed: int = 0,
    exp: DemoExperiment | None = None,
    render_size: int | None = None,
) -> list[dict[str, Any]]:
    """What the experiment's metrics reward, without training: the base model's images (one
    seed), real Atlas silk (each training image) and a flat image of the original's mean colour,
    each scored against ``n_heldout`` held-out originals (the experiment's 4 first), under
    the experiment's SSIM and three other common settings. Rows: kind, pairs, means.
    ``render_size``: draw the cloth at that size and resize it to the experiment's, as the
    catalogue path does (default: drawn at the experiment's size)."""
    import torch

    from evaluation import metrics
    from generation.diffusion.pipeline import load_base_pipeline

    exp = exp or DemoExperiment()
    samples = atlas_samples(
        exp.n_train + n_heldout, size=render_size or exp.size, seed=exp.corpus_seed
    )
    train, heldout = samples[: exp.n_train], samples[exp.n_train :]
    originals = np.stack([_pixels(s, exp.size) for s in heldout])
    threads_before = torch.get_num_threads()
    torch.set_num_threads(exp.threads)
    try:
        pipe = load_base_pipeline(base_model)
        pipe.set_progress_bar_config(disable=True)
        base = np.stack([_render(pipe, s.caption, seed, exp) for s in heldout])
    finally:
        torch.set_num_threads(threads_before)
    train_px = np.stack([_pixels(t, exp.size) for t in train])
    kinds = {
        f"base (demo model), seed {seed}": (base, originals),
        "real Atlas silk (training images)": (
            np.concatenate([train_px] * len(heldout)),
            np.repeat(originals, len(train_px), axis=0),
        ),
        "flat image of the original's mean colour": (
            np.stack([metrics.flat_like(o) for o in originals]),
            originals,
        ),
    }
    rows = []
    for kind, (made, original) in kinds.items():
        summary = metrics.summarise(metrics.pair_metrics(made, original))
        row: dict[str, Any] = {
            "kind": kind,
            "pairs": summary.n_pairs,
            "MSE": summary.mse_mean,
            "PSNR dB": summary.psnr_mean,
        }
        for label, grey, gaussian, sample_cov in SSIM_VARIANTS:
            a, b = (_grey(made), _grey(original)) if grey else (made, original)
            values = metrics.ssim_batch(
                a, b, gaussian_weights=gaussian, use_sample_covariance=sample_cov
            )
            row[label] = float(np.mean(values))
        rows.append(row)
    return rows


def format_check_table(rows: list[dict[str, Any]]) -> str:
    decimals = {"MSE": 1, "PSNR dB": 2}  # the SSIM columns get 4

    def cell(column: str, value: Any) -> str:
        return f"{value:.{decimals.get(column, 4)}f}" if isinstance(value, float) else str(value)

    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(c, v) for c, v in row.items()) + " |")
    return "\n".join(lines)


def format_table(results: dict) -> str:
    t = results["table"]
    lines = [
        "| model | MSE (lower is better) | PSNR dB (higher) | SSIM (higher) |",
        "|---|---|---|---|",
    ]
    rows = [("base (demo model)", t["base"]), ("base + Atlas LoRA", t["lora"])]
    ref = results.get("reference") or {}
    if ref:  # references, not models: what the metrics give images no model drew
        rows += [
            ("*reference:* real Atlas silk (training images vs held-out)", ref["real_atlas"]),
            ("*reference:* flat image of the original's mean colour", ref["flat"]),
        ]
    for name, r in rows:
        lines.append(f"| {name} | {r['mse']:.1f} | {r['psnr']:.2f} | {r['ssim']:.4f} |")
    fit = results.get("train_fit")
    if fit:  # how settings are chosen: the LoRA against its own training images
        s = results["settings"]
        lines.append(
            f"Fit to the training captions (LoRA, first {s['fit_captions']} captions x seeds "
            f"{', '.join(map(str, s['fit_seeds']))}): MSE {fit['mse']:.1f} / "
            f"PSNR {fit['psnr']:.2f} / SSIM {fit['ssim']:.4f}"
        )
    return "\n".join(lines)


def _ci(row: dict, name: str, decimals: int) -> str:
    c = row[f"{name}_over_seeds"]
    return f"{row[name]:.{decimals}f} ± {c['ci95']:.{decimals}f}"


def format_protocols(results: dict) -> str:
    """The reproduction and distribution protocols as Markdown tables (± 95 % CI over seeds)."""
    p = results["protocols"]
    names = (("base", "base (demo model)"), ("lora", "base + Atlas LoRA"))
    lines = [
        "Reproduction (training captions, each image vs its own original):",
        "",
        "| model | MSE (lower is better) | PSNR dB (higher) | SSIM (higher) |",
        "|---|---|---|---|",
    ]
    for key, label in names:
        r = p["reproduction"][key]
        lines.append(
            f"| {label} | {_ci(r, 'mse', 1)} | {_ci(r, 'psnr', 2)} | {_ci(r, 'ssim', 4)} |"
        )
    d = p["distribution"]
    lines += [
        "",
        f"Held-out distribution ({d['base']['n_generated']} images per model vs "
        f"{d['base']['n_references']} held-out originals):",
        "",
        "| set | SWD x1e3 (lower is better) | colour EMD, grey levels (lower) |",
        "|---|---|---|",
    ]
    for key, label in names:
        r = d[key]
        lines.append(f"| {label} | {_ci(r, 'swd_x1e3', 1)} | {_ci(r, 'colour_emd', 2)} |")
    ref = d.get("reference_real_atlas")
    if ref:
        lines.append(
            f"| *reference:* real Atlas silk (training images) | {ref['swd_x1e3']:.1f} | "
            f"{ref['colour_emd']:.2f} |"
        )
    bars = results.get("bars") or {}
    lines.append("")
    lines += [f"{name}: {'met' if ok else 'NOT met'}" for name, ok in bars.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    res = run_demo_experiment(
        Path(sys.argv[1]) if len(sys.argv) > 1 else Path("var/demo-experiment")
    )
    print(format_protocols(res))
    print(format_table(res))
    print("LoRA beats base on MSE, PSNR and SSIM:", res["lora_beats_base_on_all_three"])
