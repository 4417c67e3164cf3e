"""The recipe for the offline demo base model: a small Stable-Diffusion-format pipeline.

No machine here can download SD 1.5, so the project trains its own tiny base model on the
generic procedural set (``corpus.generic_samples``: shapes, stripes, grids, simple scenes —
never Atlas silk or ink landscapes, so a LoRA has something to learn). It is a standard
``StableDiffusionPipeline`` folder (model_index.json, unet, vae, text_encoder, tokenizer,
scheduler) in fp16 safetensors, and loads with ``StableDiffusionPipeline.from_pretrained``
like SD 1.5.

The recipe, top to bottom (fixed seed, CPU, about 55 minutes on one thread):
1. render the generic set at 64 px (6,000 mixed images and 3,000 more of one or two shapes);
2. train a small AutoencoderKL (64 px -> 16x16x4 latents) as a plain autoencoder with a tiny
   KL term, on generic crops and random colour textures (so it encodes any colour), then set
   its ``scaling_factor`` so latents have unit variance, as SD's VAE does;
3. train a small UNet2DConditionModel (cross-attention on the text encoder's hidden size) and
   a small CLIPTextModel jointly with the standard epsilon objective and SD 1.5's noise
   schedule, offset noise and min-SNR weighting; one caption in ten is dropped so
   classifier-free guidance works;
4. save fp16 weights, the real CLIP tokenizer and a DDIM scheduler, plus ``recipe.json``
   holding what determines the weights: the recipe's settings and the sha256 of the training
   corpus it renders; and the sha256 of every file written. ``tests/demo/test_demo_model.py``
   checks the shipped folder against both, so editing this module's code or comments needs no
   rebuild, while a changed setting, a corpus that renders differently or a touched weight file
   fails until the model is rebuilt.

Run it with ``python manage.py build_demo_model`` (or ``python -m
demo.model_recipe OUT_DIR``).
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from demo.corpus import generic_samples

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "model"
RECIPE_FILE = "recipe.json"


@dataclass(frozen=True)
class DemoRecipe:
    seed: int = 0
    image_size: int = 64
    n_images: int = 6000
    # Extra one-kind "shapes" images (their own seed stream) for the U-Net and text encoder
    # only: in the mixed set a quarter of the images are shapes, too few for the shape words
    # to bind (at 5,000 U-Net steps the named shape was drawn in 27 % of images; with 3,000
    # extra: 43 %; with 6,000: 33 %). 0 = the mixed set only.
    n_shape_images: int = 3000
    # VAE: 64 px -> 16x16x4 latents (two downsamplings).
    vae_channels: tuple[int, ...] = (16, 32, 32)
    vae_steps: int = 3000
    vae_batch: int = 16
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-6
    # Share of each VAE batch that is random colour textures (``_random_textures``): the generic
    # set alone is flat shapes in a few colours, and a VAE trained only on it decoded unseen
    # colours and fine patterns wrongly (Atlas silk came back green and pink), so no LoRA on the
    # U-Net could draw them. SD's VAE saw every kind of image; this is the small-scale stand-in.
    vae_texture_share: float = 0.5
    # Text encoder: the real CLIP vocabulary, small width.
    text_hidden: int = 64
    text_layers: int = 2
    text_heads: int = 4
    # UNet on 16x16 latents.
    unet_channels: tuple[int, ...] = (32, 64, 64)
    # 10,000 steps of 16 (about 18 passes over the set): the named shape drawn in 87 % of images,
    # at 5,000 in 43 % (squares and triangles came out as rounded blobs).
    unet_steps: int = 10000
    unet_batch: int = 16
    unet_lr: float = 1e-3
    caption_dropout: float = 0.1
    # Offset noise (Guttenberg 2023; diffusers' ``--noise_offset``): each latent channel's noise
    # gets a random constant. SD 1.5's schedule leaves 6.8 % of the signal at t=999, and on a
    # 16x16 latent the per-channel mean of that signal outweighs the mean of plain noise, so a
    # model trained without it reads the colour from the starting noise and ignores the caption.
    # The first shipped model was built with 0 (every caption drew the same picture for a given
    # seed; the named background colour dominated 17 % of images); 0.2 and 0.3 both reach 100 %
    # with 5,000 steps, 0.2 drew the shapes better (27 % vs 17 %). See docs/demo-experiment.md.
    noise_offset: float = 0.2
    # Min-SNR loss weighting (Hang et al. 2023; diffusers' ``--snr_gamma``); None = plain
    # epsilon loss. 5 is the paper's usual value.
    snr_gamma: float | None = 5.0
    norm_groups: int = 4  # GroupNorm groups in VAE and UNet (SD has 10+ channels a group)
    vae_crop: int = 32  # the VAE is convolutional: 32 px crops train it 4x faster
    # One thread: on a shared 2-core machine, two OpenMP threads stall each other (measured
    # 0.6 s/step with one thread vs 2-9 s with two under load).
    threads: int = 1


def _samples(recipe: DemoRecipe) -> list:
    """The training set: ``n_images`` mixed generic images, then ``n_shape_images`` shapes."""
    samples = generic_samples(recipe.n_images, recipe.image_size, recipe.seed)
    if recipe.n_shape_images:
        samples += generic_samples(
            recipe.n_shape_images, recipe.image_size, recipe.seed + 1, kind="shapes"
        )
    return samples


def corpus_sha256(recipe: DemoRecipe) -> str:
    """sha256 over the rendered training images and captions (detects corpus drift)."""
    digest = hashlib.sha256()
    for sample in _samples(recipe):
        digest.update(sample.caption.encode() + b"\0")
        digest.update(sample.image.tobytes())
    return digest.hexdigest()


def recipe_sha256(recipe: DemoRecipe, corpus: str | None = None) -> str:
    """The recipe's hash: sha256 of its settings and its corpus's hash, as canonical JSON. Two
    builds with the same recipe hash (and the same torch) train the same weights."""
    payload = {"settings": asdict(recipe), "corpus_sha256": corpus or corpus_sha256(recipe)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def files_sha256(model_dir: Path = DEFAULT_OUT_DIR) -> dict[str, str]:
    """sha256 of every file of the model folder but ``recipe.json``, by relative path."""
    from generation.diffusion.pipeline import file_sha256

    return {
        path.relative_to(model_dir).as_posix(): file_sha256(path)
        for path in sorted(model_dir.rglob("*"))
        if path.is_file() and path.name != RECIPE_FILE
    }


def _images_and_captions(recipe: DemoRecipe):
    import torch

    samples = _samples(recipe)
    arr = np.stack([np.asarray(s.image, dtype=np.float32) for s in samples])
    pixels = torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0  # [-1, 1] like SD
    return pixels, [s.caption for s in samples]


def _random_textures(n: int, size: int, gen):
    """``n`` random colour textures in [-1, 1]: cells, horizontal or vertical stripes, hard or
    blended edges, colours uniform over the RGB cube. Only the VAE trains on them (it must encode
    any image); they carry no caption, and none of the Atlas or landscape styles' structure."""
    import torch
    import torch.nn.functional as F

    out = []
    for _ in range(n):
        k = 2 ** int(torch.randint(1, 5, (1,), generator=gen))  # 2-16 cells across
        kind = int(torch.randint(0, 3, (1,), generator=gen))
        if kind == 0:
            cells = torch.rand(1, 3, k, k, generator=gen)
        elif kind == 1:
            cells = torch.rand(1, 3, 1, 2 * k, generator=gen).expand(1, 3, 2 * k, 2 * k)
        else:
            cells = torch.rand(1, 3, 2 * k, 1, generator=gen).expand(1, 3, 2 * k, 2 * k)
        if float(torch.rand(1, generator=gen)) < 0.6:
            texture = F.interpolate(cells, size=(size, size), mode="nearest")
        else:
            texture = F.interpolate(cells, size=(size, size), mode="bilinear", align_corners=False)
        out.append(texture * 2 - 1)
    return torch.cat(out)


def build_models(recipe: DemoRecipe):
    """Untrained VAE, text encoder and UNet with the recipe's shapes."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    n = len(recipe.vae_channels)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=recipe.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        latent_channels=4,
        layers_per_block=1,
        # Few groups: with one channel per group GroupNorm erases a flat patch's colour.
        norm_num_groups=recipe.norm_groups,
        sample_size=recipe.image_size,
        mid_block_add_attention=False,  # 16x16 latents of flat designs: convolution suffices
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=recipe.text_hidden,
            intermediate_size=recipe.text_hidden * 4,
            num_hidden_layers=recipe.text_layers,
            num_attention_heads=recipe.text_heads,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
            hidden_act="quick_gelu",
        )
    )
    latent = recipe.image_size // 2 ** (n - 1)
    unet = UNet2DConditionModel(
        sample_size=latent,
        in_channels=4,
        out_channels=4,
        block_out_channels=recipe.unet_channels,
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=recipe.text_hidden,
        attention_head_dim=2,  # diffusers reads it as the number of heads: 16-32 dims a head
        norm_num_groups=recipe.norm_groups,
        # A standard diffusers option: the prompt, attention-pooled, is added to the timestep
        # embedding, so global traits (colours) reach every ResNet block, not only attention.
        addition_embed_type="text",
        addition_embed_type_num_heads=4,
    )
    return vae, text_encoder, unet


def train_demo_model(
    out_dir: Path = DEFAULT_OUT_DIR, recipe: DemoRecipe | None = None, progress: bool = True
) -> dict:
    """Train the demo base model and write the pipeline folder. Returns recipe.json's content."""
    import torch

    recipe = recipe or DemoRecipe()
    started = time.monotonic()
    threads_before = torch.get_num_threads()
    torch.set_num_threads(recipe.threads)
    try:
        return _train(torch, Path(out_dir), recipe, progress, started)
    finally:
        torch.set_num_threads(threads_before)


def _train(torch, out_dir: Path, recipe: DemoRecipe, progress: bool, started: float) -> dict:
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from diffusers.training_utils import compute_snr
    from tqdm.auto import tqdm

    from demo.tiny import SD15_SCHEDULER, TOKENIZER_DIR, assemble_pipeline
    from generation.diffusion.tokenizer import load_tokenizer

    torch.manual_seed(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    pixels, captions = _images_and_captions(recipe)
    vae, text_encoder, unet = build_models(recipe)
    tokenizer = load_tokenizer(TOKENIZER_DIR)
    bar = tqdm(total=recipe.vae_steps + recipe.unet_steps, disable=not progress, unit="step")

    # 1. The VAE as a plain autoencoder (the tiny KL keeps the posterior well behaved).
    vae.train()
    opt = torch.optim.AdamW(vae.parameters(), lr=recipe.vae_lr, weight_decay=0.0)
    n_generic = recipe.vae_batch - round(recipe.vae_batch * recipe.vae_texture_share)
    for step in range(recipe.vae_steps):
        # The mixed set only (the extra shapes add nothing a VAE needs): same VAE either way.
        idx = torch.randint(0, recipe.n_images, (recipe.vae_batch,), generator=gen)
        cy, cx = torch.randint(0, recipe.image_size - recipe.vae_crop + 1, (2,), generator=gen)
        x = pixels[idx][:, :, cy : cy + recipe.vae_crop, cx : cx + recipe.vae_crop]
        x[n_generic:] = _random_textures(recipe.vae_batch - n_generic, recipe.vae_crop, gen)
        posterior = vae.encode(x).latent_dist
        # Decode the mean: a plain autoencoder learns in far fewer steps than one fed
        # posterior samples, and the sampler only ever hands the decoder clean latents.
        recon = vae.decode(posterior.mode()).sample
        loss = F.mse_loss(recon, x) + recipe.vae_kl_weight * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        for group in opt.param_groups:  # cosine decay: a sharper autoencoder in few steps
            group["lr"] = (
                recipe.vae_lr * 0.5 * (1 + math.cos(math.pi * (step + 1) / recipe.vae_steps))
            )
        bar.set_description(f"vae loss {loss.item():.4f}")
        bar.update()
    vae.eval().requires_grad_(False)

    # Latents once, from the posterior mean; the scale makes them unit-variance (SD: 0.18215).
    with torch.no_grad():
        latents = torch.cat(
            [vae.encode(pixels[i : i + 256]).latent_dist.mean for i in range(0, len(pixels), 256)]
        )
    scaling = float(1.0 / latents.std())
    vae.register_to_config(scaling_factor=scaling)
    latents = latents * scaling

    # 2. UNet + text encoder, epsilon objective on SD 1.5's noise schedule.
    tokens = tokenizer(
        [*captions, ""],
        padding="max_length",
        max_length=tokenizer.model_max_length,
        truncation=True,
        return_tensors="pt",
    ).input_ids
    empty = tokens[-1]
    tokens = tokens[:-1]
    noise_scheduler = DDPMScheduler(
        **{k: v for k, v in SD15_SCHEDULER.items() if k not in ("set_alpha_to_one",)}
    )
    unet.train()
    text_encoder.train()
    # The whole text encoder trains, token table included: with frozen random rows the colour
    # words barely moved the picture. Rows of unused tokens get zero gradients and stay put.
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=recipe.unet_lr, weight_decay=0.0)
    warmup = 100
    for step in range(recipe.unet_steps):
        idx = torch.randint(0, len(latents), (recipe.unet_batch,), generator=gen)
        z0 = latents[idx]
        ids = tokens[idx].clone()
        drop = torch.rand(recipe.unet_batch, generator=gen) < recipe.caption_dropout
        ids[drop] = empty
        noise = torch.randn(z0.shape, generator=gen)
        if recipe.noise_offset:
            offset = torch.randn(z0.shape[0], z0.shape[1], 1, 1, generator=gen)
            noise = noise + recipe.noise_offset * offset
        t = torch.randint(
            0, noise_scheduler.config.num_train_timesteps, (recipe.unet_batch,), generator=gen
        )
        zt = noise_scheduler.add_noise(z0, noise, t)
        cond = text_encoder(ids)[0]
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        if recipe.snr_gamma:
            per_image = F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))
            snr = compute_snr(noise_scheduler, t)  # the LoRA trainer's helper too
            loss = (per_image * torch.clamp(snr, max=recipe.snr_gamma) / snr).mean()
        else:  # plain epsilon loss (the first demo model's; kept so it can be rebuilt)
            loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        lr = recipe.unet_lr * min(1.0, (step + 1) / warmup)
        lr *= 0.5 * (1 + math.cos(math.pi * step / recipe.unet_steps))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.step()
        bar.set_description(f"unet loss {loss.item():.4f}")
        bar.update()
    bar.close()
    unet.eval().requires_grad_(False)
    text_encoder.eval().requires_grad_(False)

    # 3. Save: fp16 safetensors in a standard SD folder, with the recipe's fingerprint.
    pipe = assemble_pipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer)
    pipe.to(torch.float16)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pipe.save_pretrained(tmp, safe_serialization=True)
        for item in Path(tmp).iterdir():
            target = out_dir / item.name
            if item.name == "tokenizer" and target.exists():
                continue  # the committed tokenizer files are the source; keep them byte for byte
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            shutil.move(str(item), target)
    # transformers loads with dtype="auto": config.dtype decides. Weights stay fp16 on disk, but
    # the text encoder must compute in float32 like the UNet a plain from_pretrained gives.
    te_config = out_dir / "text_encoder" / "config.json"
    config = json.loads(te_config.read_text(encoding="utf-8"))
    config["dtype"] = "float32"
    te_config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    corpus = corpus_sha256(recipe)
    info = {
        "recipe_sha256": recipe_sha256(recipe, corpus),
        "corpus_sha256": corpus,
        "settings": asdict(recipe),
        "files_sha256": files_sha256(out_dir),
        "vae_scaling_factor": scaling,
        "final_unet_loss": round(float(loss.item()), 5),
        "train_seconds": round(time.monotonic() - started, 1),
        "torch_version": torch.__version__,
    }
    (out_dir / RECIPE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


if __name__ == "__main__":
    import sys

    print(
        json.dumps(
            train_demo_model(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT_DIR), indent=2
        )
    )
