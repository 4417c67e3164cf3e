"""The shipped demo base model (demo/model): a real SD-format pipeline that works."""

import json
from dataclasses import fields

import numpy as np
import pytest

from demo.corpus import generic_samples
from demo.model_recipe import (
    DEFAULT_OUT_DIR,
    RECIPE_FILE,
    DemoRecipe,
    corpus_sha256,
    files_sha256,
    recipe_sha256,
)

DEMO = DEFAULT_OUT_DIR
STEPS, CFG = 35, 7.0  # the papers' inference settings


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline

    # Exactly how a local SD 1.5 folder is loaded: no hub, no extra arguments.
    p = StableDiffusionPipeline.from_pretrained(str(DEMO), local_files_only=True)
    p.set_progress_bar_config(disable=True)
    return p


def _render(pipe, prompt: str, seed: int) -> np.ndarray:
    import torch

    out = pipe(
        prompt,
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        generator=torch.Generator().manual_seed(seed),
    )
    return np.asarray(out.images[0], dtype=np.float64)


def test_folder_is_a_standard_sd_pipeline_in_fp16_safetensors():
    index = json.loads((DEMO / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert index["vae"] == ["diffusers", "AutoencoderKL"]
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    assert index["scheduler"] == ["diffusers", "DDIMScheduler"]
    assert index["requires_safety_checker"] is False
    files = [p for p in DEMO.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".bin", ".ckpt", ".pt", ".pth", ".pkl")]
    weights = [p for p in files if p.suffix == ".safetensors"]
    assert {p.parent.name for p in weights} == {"unet", "vae", "text_encoder"}
    assert sum(p.stat().st_size for p in files) <= 30 * 1024 * 1024

    from safetensors import safe_open

    for path in weights:
        with safe_open(str(path), "pt") as f:
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
        assert dtypes == {"F16"}, path


def test_loads_offline_like_sd15(pipe):
    assert pipe.safety_checker is None
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert pipe.tokenizer.model_max_length == 77
    assert pipe.tokenizer.vocab_size == 49408
    assert pipe.text_encoder.config.hidden_size == pipe.unet.config.cross_attention_dim


def test_images_are_at_least_64px_and_deterministic_per_seed(pipe):
    a = _render(pipe, "a red circle on a blue background", seed=1)
    b = _render(pipe, "a red circle on a blue background", seed=1)
    c = _render(pipe, "a red circle on a blue background", seed=2)
    assert a.shape[0] >= 64 and a.shape[1] >= 64 and a.shape[2] == 3
    assert np.array_equal(a, b)
    assert np.abs(a - c).mean() > 1.0


def _autocorrelation(grey: np.ndarray, lag: int) -> float:
    g = grey - grey.mean()
    pairs = (g[:-lag] * g[lag:]).mean() + (g[:, :-lag] * g[:, lag:]).mean()
    return float(pairs / 2 / (g.var() + 1e-9))


def _features(img: np.ndarray) -> np.ndarray:
    """Spatial autocorrelation at 1 and 4 px: near 0 for noise, high for designs with areas."""
    grey = img.mean(axis=-1)
    return np.array([_autocorrelation(grey, 1), _autocorrelation(grey, 4)])


def test_images_are_structured_like_the_corpus_not_noise(pipe):
    samples = generic_samples(24, size=64, seed=7)
    corpus = np.mean([_features(np.asarray(s.image, dtype=np.float64)) for s in samples], axis=0)
    rng = np.random.default_rng(0)
    noise = np.mean([_features(rng.uniform(0, 255, (64, 64, 3))) for _ in range(8)], axis=0)
    made = np.mean(
        [_features(_render(pipe, s.caption, seed=i)) for i, s in enumerate(samples[:6])], axis=0
    )
    to_corpus = np.linalg.norm(made - corpus)
    to_noise = np.linalg.norm(made - noise)
    assert to_corpus * 3 < to_noise, (made, corpus, noise)


def test_prompts_matter(pipe):
    # Same seed, different prompts: the pictures differ, and in the direction the words say:
    # "horizontal stripes" changes along y far more than along x; a scene does not.
    stripes = _render(pipe, "horizontal yellow and teal stripes", seed=3)
    scene = _render(pipe, "a simple scene, blue sky, yellow sun, green field, a red house", seed=3)
    assert np.abs(stripes - scene).mean() > 10

    def along_y_over_along_x(img: np.ndarray) -> float:
        grey = img.mean(axis=-1)
        return np.abs(np.diff(grey, axis=0)).mean() / np.abs(np.diff(grey, axis=1)).mean()

    assert along_y_over_along_x(stripes) > 2 * along_y_over_along_x(scene)


def test_shipped_model_matches_the_recipes_settings_and_data():
    """recipe.json records what determines the weights; a change to either needs a rebuild
    (``python manage.py build_demo_model``). Editing the recipe's code or comments does not."""
    info = json.loads((DEMO / RECIPE_FILE).read_text())
    names = {f.name for f in fields(DemoRecipe)}
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in info["settings"].items()}
    assert set(settings) == names, "the recipe's settings changed: rebuild the model"
    assert settings == {f.name: getattr(DemoRecipe(), f.name) for f in fields(DemoRecipe)}, (
        "a default of DemoRecipe differs from the settings the model was built with: rebuild it"
    )
    assert info["corpus_sha256"] == corpus_sha256(DemoRecipe(**settings)), (
        "the generic corpus renders differently from the one the model was trained on: rebuild"
    )
    assert info["recipe_sha256"] == recipe_sha256(DemoRecipe(), info["corpus_sha256"])
    vae = json.loads((DEMO / "vae" / "config.json").read_text())
    assert vae["scaling_factor"] == info["vae_scaling_factor"]


def test_shipped_files_are_the_ones_the_recipe_wrote():
    info = json.loads((DEMO / RECIPE_FILE).read_text())
    recorded = info["files_sha256"]
    assert {"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"} <= set(
        recorded
    )
    actual = files_sha256(DEMO)
    changed = sorted(k for k in recorded.keys() | actual.keys() if recorded.get(k) != actual.get(k))
    assert changed == [], f"demo/model files differ from recipe.json: {changed}"
    # The tokenizer is the offline CLIP tokenizer generation/diffusion ships, byte for byte.
    from generation.diffusion.pipeline import TOKENIZER_DIR

    for path in TOKENIZER_DIR.iterdir():
        assert (DEMO / "tokenizer" / path.name).read_bytes() == path.read_bytes(), path.name
