"""The real CLIP (SD 1.x) tokenizer, built offline from OpenAI's BPE merges.

open-clip-torch ships ``bpe_simple_vocab_16e6.txt.gz`` (the OpenAI CLIP merges). From it we
write the ``vocab.json`` + ``merges.txt`` pair that ``CLIPTokenizer`` reads, so the demo model
and the test models tokenize exactly like Stable Diffusion 1.x without touching a model hub.
The files are committed in ``generation/diffusion/clip_tokenizer/`` (``pipeline.TOKENIZER_DIR``;
the demo model's ``demo/model/tokenizer/`` is a byte-for-byte copy); this module documents and
rebuilds them:

    pip download --no-deps open-clip-torch==3.3.0 -d /tmp/oc
    python -m generation.diffusion.tokenizer /tmp/oc/open_clip_torch-3.3.0-py3-none-any.whl OUT
"""

from __future__ import annotations

import gzip
import json
import sys
import zipfile
from pathlib import Path

BPE_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"
MODEL_MAX_LENGTH = 77  # always pass it: the library default (1e30) overflows in the pipeline


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in codes), strict=True))


def vocab_and_merges(bpe_gz: bytes) -> tuple[dict[str, int], list[str]]:
    lines = gzip.decompress(bpe_gz).decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]  # = lines[1:48895], as open_clip does
    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_tokenizer_files(wheel: Path, out_dir: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        vocab, merges = vocab_and_merges(archive.read(BPE_MEMBER))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    config = {
        "model_max_length": MODEL_MAX_LENGTH,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "do_lower_case": True,
        "tokenizer_class": "CLIPTokenizer",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    special = {k: config[k] for k in ("bos_token", "eos_token", "unk_token", "pad_token")}
    (out_dir / "special_tokens_map.json").write_text(
        json.dumps(special, indent=2), encoding="utf-8"
    )


def load_tokenizer(tokenizer_dir: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(tokenizer_dir), model_max_length=MODEL_MAX_LENGTH)


if __name__ == "__main__":
    write_tokenizer_files(Path(sys.argv[1]), Path(sys.argv[2]))
