"""Aspect-ratio buckets: whole scrolls in training, masked loss, held-out loss, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open

from generation.diffusion.buckets import (
    Bucket,
    BucketError,
    choose_bucket,
    make_buckets,
)
from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.lora_files import load_lora_into
from generation.diffusion.pipeline import load_base_pipeline
from generation.diffusion.train import (
    load_example,
    loss_weight_map,
    posterior,
    train_lora,
    validation_loss,
)
from heritage.bucketing import region_box, tile_boxes
from tests.generation.diffusion.lora_helpers import one_torch_thread, save_tiny_base

DEMO_MODEL = Path(__file__).resolve().parents[3] / "demo" / "model"
BANDS = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 200, 40)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return save_tiny_base(tmp_path_factory.mktemp("tiny-base") / "model")


def banded(width: int, height: int) -> Image.Image:
    """Four colour bands along the long side: a crop to the middle loses the end colours."""
    array = np.zeros((height, width, 3), dtype=np.uint8)
    long_side = max(width, height)
    for index, colour in enumerate(BANDS):
        start, stop = index * long_side // 4, (index + 1) * long_side // 4
        if width >= height:
            array[:, start:stop] = colour
        else:
            array[start:stop, :] = colour
    return Image.fromarray(array)


def scroll_config(**changes) -> LoraTrainingConfig:
    settings = {
        "resolution": 128,
        "bucket_step": 8,
        "rank": 4,
        "alpha": 4.0,
        "train_batch_size": 2,
        "unet_lr": 1e-3,
        "epochs": 2,
        "sample_latents": False,
    }
    return LoraTrainingConfig(**{**settings, **changes})


def test_kohya_buckets_at_sd_size():
    buckets = make_buckets(512)
    assert Bucket(512, 512) in buckets
    assert all(b.width % 64 == 0 and b.height % 64 == 0 for b in buckets)
    assert all(b.area <= 512 * 512 for b in buckets)
    # a 1:4 hanging scroll has its own bucket and keeps all of its picture
    scroll = choose_bucket(400, 1600, buckets)
    assert scroll.bucket == Bucket(256, 1024) and scroll.kept == pytest.approx(1.0)
    # a 5:1 handscroll: the nearest kohya bucket at 64 px steps keeps 88 % of its height
    hand = choose_bucket(2000, 400, buckets)
    assert hand.bucket == Bucket(1088, 192) and hand.kept_sides[0] == 1.0
    assert hand.kept_sides[1] == pytest.approx(0.882, abs=1e-3)


def test_bad_images_are_refused_by_name(tmp_path):
    buckets = make_buckets(512)
    with pytest.raises(BucketError, match=r"tiny\.png is 100x90 px, smaller than"):
        choose_bucket(100, 90, buckets, name="tiny.png")
    with pytest.raises(BucketError, match=r"bolt\.png is 6000x200 px .*beyond the bucket"):
        choose_bucket(6000, 200, buckets, name="bolt.png")
    config = scroll_config()
    with pytest.raises(ValueError, match=r"Cannot train on these images: example 2 is 4x4"):
        train_lora(
            config,
            [(banded(100, 400), "scroll"), (Image.new("RGB", (4, 4)), "dot")],
            base_model="unused",
            output_dir=tmp_path,
        )


def test_regions_and_tiles():
    assert region_box((100, 100, 50, 20), (400, 300), margin=0.2) == (90, 96, 70, 28)
    assert region_box((0, 0, 50, 20), (400, 300), margin=0.2) == (0, 0, 60, 24)
    tiles = tile_boxes((1000, 600), tile=256, count=5, seed=3)
    assert tiles == tile_boxes((1000, 600), tile=256, count=5, seed=3)  # seeded
    assert len(tiles) == 5 and all(x + 256 <= 1000 and y + 256 <= 600 for x, y, _, _ in tiles)
    assert tile_boxes((1000, 600), tile=256, count=50, seed=0, grid=True) == [
        (x, y, 256, 256) for y in (0, 256) for x in (0, 256, 512)
    ]
    assert tile_boxes((200, 600), tile=256, count=5, seed=0) == []


@pytest.mark.parametrize(("size", "bucket"), [((100, 400), (64, 256)), ((500, 100), (280, 56))])
def test_scroll_and_handscroll_keep_their_whole_picture(size, bucket):
    """Bucket, crop and the decoded cached latent (the demo model's trained VAE)."""
    import torch

    config = scroll_config()
    image = banded(*size)
    item = load_example((image, "scroll"), config, config.buckets(), name="scroll")
    assert (item.choice.bucket.width, item.choice.bucket.height) == bucket
    assert item.choice.crop == (0.0, 0.0, float(size[0]), float(size[1]))  # nothing cut
    assert tuple(item.pixels.shape) == (3, bucket[1], bucket[0])

    vae = load_base_pipeline(DEMO_MODEL).vae
    mean, _ = posterior(vae, item.pixels[None], device="cpu", dtype=torch.float32)
    decoded = vae.decode(mean).sample[0].clamp(-1, 1)
    pixels = ((decoded.permute(1, 2, 0).detach().numpy() + 1) * 127.5).astype(np.float32)
    # Each quarter along the long side decodes to its band's colour: both ends are there.
    long_axis = 1 if size[0] >= size[1] else 0
    length = pixels.shape[long_axis]
    for index, colour in enumerate(BANDS):
        lo, hi = index * length // 4, (index + 1) * length // 4
        margin = (hi - lo) // 4  # away from the band edges
        part = np.take(pixels, range(lo + margin, hi - margin), axis=long_axis)
        seen = part.reshape(-1, 3).mean(axis=0)
        assert np.abs(seen - np.array(colour)).max() < 40, (index, seen, colour)


def test_masked_weights_leave_unannotated_cells_at_the_unmasked_weight(base, tmp_path):
    import torch

    config = scroll_config(masked_loss=True, unmasked_weight=0.25)
    image = banded(100, 400)
    # the annotated motif: the top quarter of the scroll
    item = load_example((image, "scroll", [(0, 0, 100, 100)]), config, config.buckets(), name="s")
    vae = load_base_pipeline(base).vae  # downsamples by 2
    weights = loss_weight_map(item, config, vae)
    assert tuple(weights.shape) == (128, 32)  # the latent of the 64x256 bucket
    assert torch.all(weights[:32] == 1.0)
    assert torch.all(weights[32:] == 0.25)
    plain = load_example((image, "scroll"), config, config.buckets(), name="s")
    assert torch.all(loss_weight_map(plain, config, vae) == 1.0)  # no regions: all of it

    examples = [(image, "scroll", [(0, 0, 100, 100)]), (banded(500, 100), "handscroll", [])]
    masked = train_lora(config, examples, base_model=base, output_dir=tmp_path / "m")
    unmasked = train_lora(
        config.replace(masked_loss=False), examples, base_model=base, output_dir=tmp_path / "u"
    )
    assert masked.buckets == {"280x56": 1, "64x256": 1}
    # same draws, same first-step prediction: the weighted loss is the smaller one
    assert masked.loss_log[0]["loss"] < unmasked.loss_log[0]["loss"]


def test_held_out_loss_is_identical_when_a_checkpoint_is_evaluated_twice(base, tmp_path):
    train = [(banded(100, 400), "scroll a"), (banded(120, 480), "scroll b")]
    held_out = [(banded(500, 100), "handscroll"), (banded(140, 140), "square")]
    config = scroll_config(
        epochs=2, unet_lr=1e-2, validation_prompts=("a scroll",), validation_steps=2
    )
    result = train_lora(
        config, train, base_model=base, output_dir=tmp_path, validation_examples=held_out
    )
    # validation images are drawn at the dataset's dominant bucket (both scrolls: 64x256)
    for paths in result.validation_images.values():
        assert Image.open(paths[0]).size == (64, 256)
    log = result.checkpoint_log
    assert [row["step"] for row in log] == [1, 2]
    assert all(row["validation_loss"] > 0 and row["train_loss"] > 0 for row in log)
    first = load_base_pipeline(base)
    load_lora_into(first, log[0]["lora"])
    once = validation_loss(first, held_out, config=config)
    twice = validation_loss(first, held_out, config=config)
    assert once == twice
    assert once == pytest.approx(log[0]["validation_loss"], rel=1e-5)
    # the checkpoints' files differ: each epoch is its own LoRA
    with safe_open(log[0]["lora"], "pt") as a, safe_open(log[1]["lora"], "pt") as b:
        key = next(iter(a.keys()))
        assert not np.array_equal(a.get_tensor(key).numpy(), b.get_tensor(key).numpy())


def test_resume_with_buckets_is_bit_exact(base, tmp_path):
    examples = [
        (banded(100, 400), "scroll a"),
        (banded(500, 100), "handscroll"),
        (banded(110, 440), "scroll b"),
        (banded(90, 90), "square"),
        (banded(520, 104), "handscroll b"),
    ]
    config = scroll_config(epochs=3, random_flip=True, sample_latents=True)
    whole = train_lora(config, examples, base_model=base, output_dir=tmp_path / "whole")
    assert whole.buckets == {"128x128": 1, "280x56": 2, "64x256": 2}
    assert whole.total_steps == 3 * 3  # per epoch: one batch per bucket (2, 2 and 1 examples)

    class Stop:
        def __init__(self, after: int) -> None:
            self.after, self.asked = after, 0

        def __call__(self) -> bool:
            self.asked += 1
            return self.asked > self.after

    part = train_lora(
        config, examples, base_model=base, output_dir=tmp_path / "part", should_stop=Stop(4)
    )
    assert part.status == "cancelled"
    resumed = train_lora(config, examples, base_model=base, output_dir=tmp_path / "part")
    assert resumed.resumed_from_step == 3
    assert [p["loss"] for p in resumed.loss_log] == [p["loss"] for p in whole.loss_log]
    with (
        safe_open(whole.files.diffusers_path, "pt") as a,
        safe_open(resumed.files.diffusers_path, "pt") as b,
    ):
        for key in a.keys():
            assert np.array_equal(a.get_tensor(key).numpy(), b.get_tensor(key).numpy()), key
