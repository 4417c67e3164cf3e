"""One-off check (not collected by pytest; a few minutes, ~10 GB RAM): an SD 1.5-sized random
checkpoint in the original layout loads through the DEFAULT path (inline SD 1.5 configs,
committed tokenizer), with the weights it was written from.

The checkpoint is written as tests/fixtures/tiny-sd1.safetensors was (make_sd1_single_file.py):
SD 1.5's components built from their configs with random weights, saved as a diffusers folder,
then converted by diffusers' own ``scripts/convert_diffusers_to_original_stable_diffusion.py``
(from github:huggingface/diffusers, not in this repo).

Run: python tests/generation/diffusion/sd15_single_file_check.py CONVERTER_SCRIPT
"""

import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel

from generation.diffusion import pipeline as P


def build(folder: Path) -> dict[str, torch.Tensor]:
    """SD 1.5's components with random fp16 weights in ``folder``; returns reference tensors."""
    torch.manual_seed(0)
    reference = {}
    unet = UNet2DConditionModel(**P.SD15_UNET_CONFIG).half()
    unet.save_pretrained(str(folder / "unet"), safe_serialization=True)
    reference.update({f"unet.{k}": v for k, v in list(unet.state_dict().items())[::50]})
    del unet
    gc.collect()
    vae = AutoencoderKL(**P.SD15_VAE_CONFIG).half()
    vae.save_pretrained(str(folder / "vae"), safe_serialization=True)
    # The mid-block attention is where the original layout differs most (1x1 convolutions).
    reference.update(
        {f"vae.{k}": v for k, v in vae.state_dict().items() if "mid_block.attentions" in k}
    )
    del vae
    skip = ("architectures", "model_type", "torch_dtype")
    config = {k: v for k, v in P.SD15_TEXT_ENCODER_CONFIG.items() if k not in skip}
    text_encoder = CLIPTextModel(CLIPTextConfig(**config)).half()
    text_encoder.save_pretrained(str(folder / "text_encoder"), safe_serialization=True)
    del text_encoder
    # The converter expects transformers 4's key names (``text_model.``), as SD 1.5's repo has.
    weights = folder / "text_encoder" / "model.safetensors"
    tensors = load_file(str(weights))
    save_file(
        {(k if k.startswith("text_model.") else f"text_model.{k}"): v for k, v in tensors.items()},
        str(weights),
        metadata={"format": "pt"},
    )
    return {k: v.clone() for k, v in reference.items()}


def main(converter: str) -> None:
    torch.set_num_threads(1)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "sd15-random"
        reference = build(folder)
        checkpoint = Path(tmp) / "sd15-random.safetensors"
        print("built", round(time.time() - started), "s", flush=True)
        subprocess.run(
            [
                sys.executable,
                converter,
                "--model_path",
                str(folder),
                "--checkpoint_path",
                str(checkpoint),
                "--half",
                "--use_safetensors",
            ],
            check=True,
        )
        print("converted", checkpoint.stat().st_size >> 20, "MiB", flush=True)
        info = P.validate_base_model(checkpoint)  # no <stem>.config/: SD 1.5's inline configs
        print("validated", info.kind, info.resolution, info.parameters, flush=True)
        pipe = P.load_base_pipeline(checkpoint, dtype=torch.float32)
        loaded = {"unet": pipe.unet.state_dict(), "vae": pipe.vae.state_dict()}
        for key, value in reference.items():
            component, name = key.split(".", 1)
            assert torch.equal(loaded[component][name].half(), value), f"{key} differs"
        print(
            "weights match;",
            type(pipe.scheduler).__name__,
            "scheduler, tokenizer of",
            len(pipe.tokenizer),
        )
        image = pipe(
            "a silk pattern",
            num_inference_steps=1,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(0),
            output_type="np",
        ).images
        print("image", image.shape, float(image.mean()), round(time.time() - started), "s")


if __name__ == "__main__":
    main(sys.argv[1])
