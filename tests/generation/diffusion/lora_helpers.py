"""Small shared pieces of the LoRA tests: a saved tiny base model and a tiny image set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def save_tiny_base(folder: Path) -> Path:
    from demo.tiny import build_tiny_pipeline

    build_tiny_pipeline(folder, seed=0, sample_size=32)
    return folder


def tiny_examples(count: int = 4, size: int = 40) -> list[tuple[Image.Image, str]]:
    """Striped images (a learnable regularity) with distinct captions."""
    examples = []
    for index in range(count):
        array = np.zeros((size, size, 3), dtype=np.uint8)
        array[:, :, index % 3] = 255 * ((np.arange(size) // (2 + index)) % 2)[None, :]
        array[:, :, (index + 1) % 3] = 128
        examples.append((Image.fromarray(array), f"striped silk pattern number {index}"))
    return examples


def write_png_examples(folder: Path, count: int = 4) -> list[tuple[Path, str]]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, (image, caption) in enumerate(tiny_examples(count)):
        path = folder / f"{index}.png"
        image.save(path)
        out.append((path, caption))
    return out


def one_torch_thread():
    """Generator for an autouse fixture: tiny models run faster on one thread, and much
    faster when the 2 shared cores are busy (threads spin against each other)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
