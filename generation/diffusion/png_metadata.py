"""Metadata inside generated PNGs: A1111 ``parameters`` text and a JSON provenance chunk.

The ``parameters`` text chunk is the one AUTOMATIC1111's web UI writes and reads ("PNG info"),
so ComfyUI, Civitai and A1111 show the prompt, seed and hashes of an Atelier image. Values are
quoted as A1111's ``infotext_utils.quote`` does (JSON string when they hold ``,`` ``:`` or a
newline; also ``"`` here, so a quote survives the round trip), and the LoRA is named so A1111
finds the run's kohya file: ``<lora:STEM:scale>`` and ``Lora hashes: "STEM: HASH12"`` with the
file's stem (its ``ss_output_name``) and the first 12 hex digits of its addnet hash. The
``atelier:provenance`` iTXt chunk holds what a museum needs on top: base model, LoRA sha256,
passage and item ids, request id, software versions, and the AI-generated label.
No Django here.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

PARAMETERS_KEY = "parameters"
PROVENANCE_KEY = "atelier:provenance"
AI_LABEL = "AI-generated image"

# Our sampler keys -> the names A1111 writes and reads back.
A1111_SAMPLER_NAMES = {"ddim": "DDIM", "euler": "Euler", "dpmpp": "DPM++ 2M"}


@dataclass(frozen=True)
class ImageParameters:
    prompt: str
    negative_prompt: str
    steps: int
    sampler: str  # ddim | euler | dpmpp
    cfg: float
    seed: int
    width: int
    height: int
    model_name: str
    model_sha256: str
    lora_name: str = ""  # the kohya file's stem (= its ss_output_name)
    lora_hash: str = ""  # its addnet hash (sha256 after the header); 12 hex digits are written
    lora_scale: float = 1.0
    extra: dict[str, str] = field(default_factory=dict)


def _number(value: float) -> str:
    return f"{value:g}"


def quote(value: str) -> str:
    """A1111's infotext quoting: a value holding a separator becomes a JSON string."""
    if not any(char in value for char in ',:\n"'):
        return value
    return json.dumps(value, ensure_ascii=False)


def a1111_lora_reference(file_name: str, data: bytes) -> tuple[str, str]:
    """(NAME, hash) by which A1111 finds a LoRA file: the file's stem and its addnet hash
    (what kohya stores as ``sshs_model_hash``)."""
    from pathlib import PurePosixPath

    from generation.diffusion.lora_files import addnet_hash

    return PurePosixPath(file_name).stem, addnet_hash(data)


def a1111_parameters(p: ImageParameters) -> str:
    """The text A1111 writes: prompt, 'Negative prompt:' line, then 'Key: value, ...'."""
    prompt = p.prompt
    if p.lora_name:
        # A1111 applies a LoRA through this tag; keep it so the prompt re-runs there as is.
        prompt = f"{prompt} <lora:{p.lora_name}:{_number(p.lora_scale)}>"
    lines = [prompt]
    if p.negative_prompt:
        lines.append(f"Negative prompt: {p.negative_prompt}")
    pairs: list[tuple[str, str]] = [
        ("Steps", str(p.steps)),
        ("Sampler", A1111_SAMPLER_NAMES.get(p.sampler, p.sampler)),
        ("CFG scale", _number(p.cfg)),
        ("Seed", str(p.seed)),
        ("Size", f"{p.width}x{p.height}"),
        ("Model hash", p.model_sha256[:10]),
        ("Model", p.model_name),
    ]
    if p.lora_name:
        pairs.append(("Lora hashes", f"{p.lora_name}: {p.lora_hash[:12]}"))
    pairs.extend(p.extra.items())
    lines.append(", ".join(f"{key}: {quote(str(value))}" for key, value in pairs))
    return "\n".join(lines)


def png_with_metadata(image: Image.Image, *, parameters: str, provenance: dict[str, Any]) -> bytes:
    """Encode ``image`` as PNG bytes with both chunks (UTF-8 safe: prompts may be Chinese)."""
    info = PngInfo()
    info.add_text(PARAMETERS_KEY, parameters)  # tEXt, or iTXt when not latin-1
    info.add_itxt(PROVENANCE_KEY, json.dumps(provenance, ensure_ascii=False, sort_keys=True))
    info.add_text("Software", str(provenance.get("software", {}).get("atelier", "Atelier")))
    info.add_itxt("Description", AI_LABEL)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def read_png_metadata(data: bytes) -> tuple[str, dict[str, Any]]:
    """(parameters text, provenance dict) of a PNG written by ``png_with_metadata``."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        text = dict(getattr(image, "text", {}) or {})
    provenance = json.loads(text[PROVENANCE_KEY]) if PROVENANCE_KEY in text else {}
    return text.get(PARAMETERS_KEY, ""), provenance


# A1111's ``infotext_utils.re_param``: a key, then a JSON-quoted value or text up to a comma.
_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _unquote(value: str) -> str:
    if len(value) < 2 or value[0] != '"' or value[-1] != '"':
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_a1111_parameters(text: str) -> dict[str, str]:
    """The 'Key: value' pairs of a parameters text plus 'Prompt' and 'Negative prompt'."""
    lines = text.split("\n")
    result: dict[str, str] = {}
    settings_line = lines[-1] if len(lines) > 1 else ""
    body = lines[:-1] if len(lines) > 1 else lines
    prompt_lines = [line for line in body if not line.startswith("Negative prompt: ")]
    negatives = [line for line in body if line.startswith("Negative prompt: ")]
    result["Prompt"] = "\n".join(prompt_lines)
    if negatives:
        result["Negative prompt"] = negatives[0][len("Negative prompt: ") :]
    for key, value in _PARAM.findall(settings_line):
        result[key.strip()] = _unquote(value.strip())
    return result
