"""A small world for evaluation tests: a heritage item with a reference image, a frozen training
dataset, a LoRA run, and a base-vs-LoRA generation request whose PNGs carry A1111 parameters and
provenance (as the generation job writes them)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from archives.services import stored_file_save
from generation.diffusion.png_metadata import png_with_metadata
from generation.models import BaseModel, GeneratedImage, GenerationRequest, TrainingRun
from heritage.models import (
    Collection,
    GazetteerPassage,
    HeritageItem,
    ItemImage,
    TrainingDataset,
    TrainingExample,
)
from jobs.models import Job
from tests.conftest import make_user

SIZE = 32


def png_bytes(arr: np.ndarray, **meta) -> bytes:
    image = Image.fromarray(arr.astype(np.uint8), "RGB")
    if meta:
        return png_with_metadata(image, **meta)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def texture(seed: int, size: int = SIZE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3))
    return np.kron(small, np.ones((size // 8, size // 8, 1))).astype(np.uint8)


@dataclass
class World:
    item: HeritageItem
    reference: ItemImage
    passage: GazetteerPassage
    dataset: TrainingDataset
    examples: list[TrainingExample]
    request: GenerationRequest
    images: list[GeneratedImage] = field(default_factory=list)
    experts: list = field(default_factory=list)

    def by_condition(self, condition: str) -> list[GeneratedImage]:
        return [g for g in self.images if g.condition == condition]


def make_world(
    n_seeds: int = 2,
    prompt: str = "a river between two hills",
    tag: str = "a",
    near_copy_seed: int | None = None,
) -> World:
    collection, _ = Collection.objects.get_or_create(
        slug="landscapes", defaults={"title": {"en": "L"}}
    )
    item = HeritageItem.objects.create(
        collection=collection, accession_number=f"ACC-{tag}", title={"en": "River landscape"}
    )
    ref_arr = texture(1000 + ord(tag[0]))
    ref = ItemImage.objects.create(
        item=item,
        original=stored_file_save(name=f"test/{tag}/ref.png", content=png_bytes(ref_arr)),
        width=SIZE,
        height=SIZE,
    )
    passage = GazetteerPassage.objects.create(
        source_work="County Gazetteer",
        original_text="两山夹一水",
        english_translation="A river runs between two hills.",
        approved_prompt=prompt,
    )
    passage.items.add(item)
    dataset = TrainingDataset.objects.create(name=f"ds-{tag}", frozen=True, resolution=SIZE)
    examples = []
    for i in range(3):
        arr = texture(2000 + i + 10 * ord(tag[0]))
        img = ItemImage.objects.create(
            item=item,
            original=stored_file_save(name=f"test/{tag}/train{i}.png", content=png_bytes(arr)),
            width=SIZE,
            height=SIZE,
        )
        examples.append(
            TrainingExample.objects.create(
                dataset=dataset,
                image=img,
                crop=stored_file_save(name=f"test/{tag}/crop{i}.png", content=png_bytes(arr)),
                caption="[U], landscape",
            )
        )
    base_model, _ = BaseModel.objects.get_or_create(
        name="tiny", defaults={"path": "/nonexistent", "kind": "diffusers"}
    )
    run = TrainingRun.objects.create(
        dataset=dataset,
        base_model=base_model,
        trigger_token="[U]",
        job=Job.objects.create(kind="generation.train", status="succeeded", timeout=60),
    )
    request = GenerationRequest.objects.create(
        prompt=prompt,
        final_prompt=f"[U], {prompt}",
        base_model=base_model,
        training_run=run,
        compare_with_base=True,
        seeds=list(range(n_seeds)),
        width=SIZE,
        height=SIZE,
        item=item,
        passage=passage,
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
    )
    world = World(item, ref, passage, dataset, examples, request)
    for seed in range(n_seeds):
        for condition in ("base", "lora"):
            if condition == "lora" and near_copy_seed == seed:
                arr = texture(2000 + 1 + 10 * ord(tag[0]))  # training example 1, verbatim
            else:
                arr = texture(seed * 7 + (1 if condition == "lora" else 0) + 100 * ord(tag[0]))
            data = png_bytes(
                arr,
                parameters=f"[U], {prompt}\nSteps: 35, Sampler: DDIM, Seed: {seed}, "
                f'Lora hashes: "atlas-lora: abcdef"',
                provenance={"condition": condition, "lora": {"training_run": run.pk}},
            )
            file = stored_file_save(
                name=f"generation/requests/{request.pk}/{seed}-{condition}.png",
                content=data,
                content_type="image/png",
            )
            world.images.append(
                GeneratedImage.objects.create(
                    request=request,
                    file=file,
                    seed=seed,
                    condition=condition,
                    prompt=request.final_prompt,
                    width=SIZE,
                    height=SIZE,
                    item=item,
                    passage=passage,
                )
            )
    return world


@pytest.fixture
def world(db):
    w = make_world()
    w.experts = [make_user(f"exp{i}", "expert") for i in range(4)]
    return w
