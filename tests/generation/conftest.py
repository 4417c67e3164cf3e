"""Fixtures of the generation tests: a tiny SD-format base model, a frozen dataset, a LoRA."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rest_framework.test import APIClient


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 32 px random-weight SD-format folder (saved once per test session)."""
    from demo.tiny import build_tiny_pipeline

    folder = tmp_path_factory.mktemp("tiny-base") / "model"
    build_tiny_pipeline(folder, seed=0, sample_size=32)
    return folder


@pytest.fixture(scope="session")
def tiny_lora_file(tiny_model_dir, tmp_path_factory) -> Path:
    """A diffusers-format LoRA for the tiny model with strong random weights (visible effect)."""
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StableDiffusionPipeline.from_pretrained(tiny_model_dir, local_files_only=True)
    pipe.unet.add_adapter(
        LoraConfig(
            r=4,
            lora_alpha=4,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        )
    )
    generator = torch.Generator().manual_seed(0)
    for name, param in pipe.unet.named_parameters():
        if "lora_B" in name:
            param.data = torch.randn(param.shape, generator=generator) * 0.5
    folder = tmp_path_factory.mktemp("tiny-lora")
    StableDiffusionPipeline.save_lora_weights(
        folder,
        unet_lora_layers=convert_state_dict_to_diffusers(get_peft_model_state_dict(pipe.unet)),
        safe_serialization=True,
    )
    return folder / "pytorch_lora_weights.safetensors"


@pytest.fixture
def base_model(db, tiny_model_dir):
    """The tiny model as the default base model (registered without the slow load check)."""
    from generation.diffusion.pipeline import base_model_sha256
    from generation.models import BaseModel

    return BaseModel.objects.create(
        name="tiny",
        path=str(tiny_model_dir),
        kind="diffusers",
        sha256=base_model_sha256(tiny_model_dir),
        resolution=32,
        is_default=True,
    )


def striped_png(index: int, size: int = 48) -> bytes:
    array = np.zeros((size, size, 3), dtype=np.uint8)
    array[:, :, index % 3] = 255 * ((np.arange(size) // (2 + index)) % 2)[None, :]
    array[:, :, (index + 1) % 3] = 128
    out = io.BytesIO()
    Image.fromarray(array).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def frozen_dataset(db):
    """Four striped images (one for validation) frozen at 32 px with trigger [U]."""
    from heritage import services

    collection = services.collection_create(slug="silk", title={"en": "Silk"}, published=True)
    for index in range(4):
        item = services.item_create(
            collection=collection,
            accession_number=f"SILK-{index}",
            title={"en": f"Silk {index}"},
            rights="http://rightsstatements.org/vocab/NoC-US/1.0/",
            published=True,
        )
        services.item_image_create(
            item=item, content=striped_png(index), filename=f"{index}.png", derivatives="none"
        )
    dataset = services.training_dataset_create(
        name="silk", resolution=32, collections=["silk"], validation_fraction=0.25
    )
    return services.training_dataset_freeze(dataset=dataset)


@pytest.fixture
def curator_client(curator) -> APIClient:
    client = APIClient()
    client.force_authenticate(curator)
    return client


@pytest.fixture
def finished_run(db, base_model, frozen_dataset, tiny_lora_file):
    """A succeeded training run whose LoRA is ``tiny_lora_file`` (stored with its sha256), with
    the same adapters as a kohya file ``tiny-lora.safetensors``."""
    from diffusers.utils import convert_unet_state_dict_to_peft
    from safetensors.torch import save

    from archives.services import stored_file_save
    from generation.diffusion.lora_files import read_lora_file, to_kohya
    from generation.models import TrainingRun
    from jobs.models import Job

    lora = stored_file_save(
        name="generation/tests/pytorch_lora_weights.safetensors",
        content=tiny_lora_file.read_bytes(),
    )
    tensors, _ = read_lora_file(tiny_lora_file)
    peft = convert_unet_state_dict_to_peft({k.removeprefix("unet."): v for k, v in tensors.items()})
    kohya = stored_file_save(
        name="generation/tests/tiny-lora.safetensors",
        content=save(to_kohya(peft, None, alpha=4.0), {"ss_output_name": "tiny-lora"}),
    )
    return TrainingRun.objects.create(
        name="tiny lora",
        dataset=frozen_dataset,
        base_model=base_model,
        settings={},
        job=Job.objects.create(kind="generation.train", status="succeeded", timeout=60),
        lora_diffusers=lora,
        lora_kohya=kohya,
        trigger_token="[U]",
    )
