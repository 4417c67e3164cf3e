"""One-off check (not collected by pytest; ~1 min, ~10 GB RAM): an SD 1.5-sized random checkpoint
in the original layout loads through the DEFAULT path (inline SD 1.5 configs, committed tokenizer).

Run: python tests/generation/diffusion/sd15_single_file_check.py
"""

import gc
import os
import sys
import tempfile
import time

os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, ".")
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel

from generation.diffusion import pipeline as P
from tests.generation.diffusion import original_layout as O

torch.set_num_threads(1)
CHECKPOINT = os.path.join(tempfile.gettempdir(), "sd15-random.safetensors")
t = time.time()
torch.manual_seed(0)
unet = UNet2DConditionModel(**P.SD15_UNET_CONFIG)
state = {k: v.half() for k, v in O.unet_to_original(unet.state_dict(), unet.config).items()}
ref_unet = {k: v.half() for k, v in list(unet.state_dict().items())[::50]}
del unet
gc.collect()
vae = AutoencoderKL(**P.SD15_VAE_CONFIG)
state.update({k: v.half() for k, v in O.vae_to_original(vae.state_dict(), vae.config).items()})
ref_vae = {k: v.half() for k, v in vae.state_dict().items() if "mid_block.attentions" in k}
del vae
cfg = {
    k: v
    for k, v in P.SD15_TEXT_ENCODER_CONFIG.items()
    if k not in ("architectures", "model_type", "torch_dtype")
}
te = CLIPTextModel(CLIPTextConfig(**cfg))
state.update({k: v.half() for k, v in O.text_encoder_to_original(te.state_dict()).items()})
del te
gc.collect()
state = {k: v.contiguous() for k, v in state.items()}
print("built", len(state), "tensors", round(time.time() - t), "s", flush=True)
save_file(state, CHECKPOINT)
del state
gc.collect()
print("saved", os.path.getsize(CHECKPOINT) >> 20, "MiB", round(time.time() - t), "s", flush=True)
info = P.validate_base_model(CHECKPOINT)
print(
    "validated",
    info.kind,
    info.resolution,
    info.parameters,
    round(time.time() - t),
    "s",
    flush=True,
)
pipe = P.load_base_pipeline(CHECKPOINT, dtype=torch.float32)
u = pipe.unet.state_dict()
assert all(torch.equal(u[k].half(), v) for k, v in ref_unet.items()), "unet mismatch"
vv = pipe.vae.state_dict()
assert all(torch.equal(vv[k].half(), v) for k, v in ref_vae.items()), "vae attention mismatch"
print("weights match; scheduler", type(pipe.scheduler).__name__, "tokenizer", len(pipe.tokenizer))
img = pipe(
    "a silk pattern",
    num_inference_steps=1,
    height=64,
    width=64,
    generator=torch.Generator().manual_seed(0),
    output_type="np",
).images
print("image", img.shape, float(img.mean()), round(time.time() - t), "s")
os.remove(CHECKPOINT)
