"""LoRA files: bit-identical reload, kohya file that diffusers loads with the true alpha and the
same images, metadata, pickles refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.lora_files import (
    LoraFileError,
    _kohya_network_args,
    kohya_unrepresentable,
    load_lora_into,
    lora_state_dicts,
    read_lora_file,
    read_lora_metadata,
    to_kohya,
)
from generation.diffusion.pipeline import base_model_sha256, file_sha256, load_base_pipeline
from generation.diffusion.train import train_lora
from tests.generation.diffusion.lora_helpers import one_torch_thread, save_tiny_base, tiny_examples

PROVENANCE = {
    "dataset_content_hash": "ab" * 32,
    "dataset_version": 3,
    "accession_numbers": ["XJ-2020-001", "XJ-2020-002"],
    "rights": "https://creativecommons.org/licenses/by-nc/4.0/",
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LoRA on U-Net cross-attention + text encoder with alpha != rank (the kohya trap)."""
    root = tmp_path_factory.mktemp("lora-files")
    base = save_tiny_base(root / "base")
    config = LoraTrainingConfig(
        resolution=32,
        rank=4,
        alpha=16.0,
        target="unet_and_text_encoder",
        cache_text_embeddings=False,
        unet_lr=5e-2,
        text_encoder_lr=5e-2,
        train_batch_size=2,
        epochs=2,
        trigger_token="[U]",
    )
    result = train_lora(
        config,
        tiny_examples(4),
        base_model=base,
        output_dir=root / "run",
        title="Gazetteer test LoRA",
        license="CC-BY-NC-4.0",
        provenance={**PROVENANCE, "base_model_sha256": base_model_sha256(base)},
    )
    return base, result


def generate(pipe) -> np.ndarray:
    image = pipe(
        "[U], a river valley",
        num_inference_steps=3,
        guidance_scale=7.0,
        height=32,
        width=32,
        generator=torch.Generator().manual_seed(5),
        output_type="np",
    ).images[0]
    return image


def test_sha256_of_each_file(trained):
    _, result = trained
    assert result.files.diffusers_sha256 == file_sha256(result.files.diffusers_path)
    assert result.files.kohya_sha256 == file_sha256(result.files.kohya_path)


def loaded_lora(pipe) -> dict[str, torch.Tensor]:
    """The adapters now in ``pipe``, in the diffusers file's naming (U-Net: PEFT; text encoder:
    diffusers' ``lora_linear_layer`` under ``text_model.``)."""
    from diffusers.utils import convert_state_dict_to_diffusers

    unet, te = lora_state_dicts(pipe.unet, pipe.text_encoder)
    out = {f"unet.{k}": v for k, v in unet.items()}
    out.update(
        {f"text_encoder.text_model.{k}": v for k, v in convert_state_dict_to_diffusers(te).items()}
    )
    return out


def scalings(model) -> set[float]:
    return {m.scaling["default"] for m in model.modules() if getattr(m, "scaling", None)}


def lora_deltas(pipe) -> dict[str, torch.Tensor]:
    """What each adapter adds to its layer's weight: scaling * B @ A (format independent)."""
    deltas = {}
    for component in (pipe.unet, pipe.text_encoder):
        for name, module in component.named_modules():
            if getattr(module, "lora_A", None) and "default" in module.lora_A:
                a = module.lora_A["default"].weight.flatten(1)
                b = module.lora_B["default"].weight.flatten(1)
                deltas[name] = module.scaling["default"] * (b @ a)
    return deltas


@pytest.fixture(scope="module")
def trained_pipe(trained):
    """The base model with the run's final adapters as train_lora left them (alpha 16, rank 4):
    rebuilt from the kohya file, which stores the unscaled weights and the true alpha."""
    base, result = trained
    pipe = load_base_pipeline(base)
    load_lora_into(pipe, result.files.kohya_path)
    return pipe


def test_diffusers_file_uses_the_sd15_text_encoder_names_and_reloads_its_weights(trained):
    base, result = trained
    saved, header = read_lora_file(result.files.diffusers_path)
    te_keys = [k for k in saved if k.startswith("text_encoder.")]
    # SD 1.5 LoRA files in the wild (and diffusers 0.32, which sd-scripts pins) name the text
    # encoder's layers under text_model.; transformers 5 dropped that module level.
    assert te_keys and all(k.startswith("text_encoder.text_model.encoder.layers.") for k in te_keys)
    assert all(".lora_linear_layer." in k for k in te_keys)
    pipe = load_base_pipeline(base)
    load_lora_into(pipe, result.files.diffusers_path)
    loaded = loaded_lora(pipe)
    assert loaded.keys() == saved.keys() and len(saved) > 0
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    # alpha / rank = 16 / 4 is in the weights: the file loads at scale 1 whatever reads it.
    assert scalings(pipe.unet) == scalings(pipe.text_encoder) == {1.0}
    assert header["heritage.lora_scale_in_weights"] == "4.0"
    assert header["ss_network_alpha"] == "16.0"  # the trained alpha stays on record


def test_diffusers_file_draws_at_the_trained_scale_with_or_without_its_alpha_header(
    trained, trained_pipe, tmp_path
):
    """Current diffusers reads alpha from the adapter-metadata header; releases before it (0.32,
    as kohya-ss/sd-scripts pins) assume alpha = rank. Both must draw the trained LoRA."""
    from safetensors.torch import save_file

    base, result = trained
    expected = lora_deltas(trained_pipe)
    assert scalings(trained_pipe.unet) == {4.0}  # the kohya file: alpha 16 over rank 4

    current = load_base_pipeline(base)
    load_lora_into(current, result.files.diffusers_path)

    tensors, header = read_lora_file(result.files.diffusers_path)
    assert "lora_adapter_metadata" in header
    no_header = tmp_path / "pytorch_lora_weights.safetensors"  # what the old loader sees
    save_file(tensors, str(no_header), metadata={"format": "pt"})
    old = load_base_pipeline(base)
    load_lora_into(old, no_header)
    assert scalings(old.unet) == scalings(old.text_encoder) == {1.0}  # alpha assumed = rank

    for pipe in (current, old):
        deltas = lora_deltas(pipe)
        assert deltas.keys() == expected.keys() and len(deltas) > 0
        for name, delta in expected.items():
            torch.testing.assert_close(deltas[name], delta, rtol=1e-6, atol=1e-7)
    # 16 / 4 is a power of two, so here the images are even bit-identical.
    reference = generate(trained_pipe)
    np.testing.assert_array_equal(generate(current), reference)
    np.testing.assert_array_equal(generate(old), reference)
    assert not np.array_equal(reference, generate(load_base_pipeline(base)))


def test_kohya_file_holds_the_true_alpha_and_sd1_prefixes(trained):
    _, result = trained
    tensors, _ = read_lora_file(result.files.kohya_path)
    alphas = {k: v for k, v in tensors.items() if k.endswith(".alpha")}
    assert alphas and all(float(v) == 16.0 for v in alphas.values())
    assert any(k.startswith("lora_unet_") for k in tensors)
    assert any(k.startswith("lora_te_text_model_encoder_layers_0_") for k in tensors)
    assert not any(k.startswith("lora_te1_") for k in tensors)
    # cross-attention only: every U-Net key is an attn2 module
    assert all("_attn2_" in k for k in tensors if k.startswith("lora_unet_"))
    assert (
        "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_out_0.lora_down.weight"
        in tensors
    )


def test_kohya_file_loads_in_diffusers_at_the_trained_scale(trained, trained_pipe, caplog):
    base, result = trained
    from_diffusers = load_base_pipeline(base)
    load_lora_into(from_diffusers, result.files.diffusers_path)
    from_kohya = load_base_pipeline(base)
    from diffusers.utils import logging as diffusers_logging

    caplog.clear()
    diffusers_logging.enable_propagation()  # diffusers' logger does not propagate by default
    try:
        with caplog.at_level("WARNING"):
            load_lora_into(from_kohya, result.files.kohya_path)
    finally:
        diffusers_logging.disable_propagation()
    problems = [r.message for r in caplog.records if "unexpected" in r.message.lower()]
    problems += [r.message for r in caplog.records if "missing" in r.message.lower()]
    assert problems == []
    # alpha 16 / rank 4, not 1.0 as the converter's alpha = rank would give
    assert scalings(from_kohya.unet) == scalings(from_kohya.text_encoder) == {4.0}
    a, b = lora_deltas(from_diffusers), lora_deltas(from_kohya)
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(generate(from_diffusers), generate(from_kohya))


def _after_header(data: bytes) -> bytes:
    return data[8 + int.from_bytes(data[:8], "little") :]


def test_kohya_file_carries_the_hashes_a1111_and_kohya_compute(trained):
    """Recomputed here from the file's bytes with kohya's rules (library/train_util.py)."""
    import hashlib
    import io

    from safetensors.torch import save

    base, result = trained
    data = open(result.files.kohya_path, "rb").read()
    tensors, meta = read_lora_file(result.files.kohya_path)
    # addnet hash: sha256 of the bytes after the header (A1111's fallback for a file without it)
    assert meta["sshs_model_hash"] == hashlib.sha256(_after_header(data)).hexdigest()
    # legacy: 0x10000 bytes at 0x100000 of the file as written with only its ss_* metadata
    ss_only = save(tensors, {k: v for k, v in meta.items() if k.startswith("ss_")})
    buffer = io.BytesIO(ss_only)
    buffer.seek(0x100000)
    assert meta["sshs_legacy_hash"] == hashlib.sha256(buffer.read(0x10000)).hexdigest()[:8]
    assert meta["ss_new_sd_model_hash"] == base_model_sha256(base)
    # A1111 names the LoRA by ss_output_name (else the file name): the same, the file's stem.
    assert meta["ss_output_name"] == "gazetteer-test-lora"
    assert result.files.kohya_path.endswith("/gazetteer-test-lora.safetensors")
    assert meta["modelspec.prediction_type"] == "epsilon"
    assert meta["ss_network_module"] == "networks.lora"
    # kohya's network_args are its create_network() keywords; attention-only LoRAs need none
    assert "ss_network_args" not in meta


def test_metadata_modelspec_kohya_and_heritage(trained):
    _, result = trained
    for path in (result.files.diffusers_path, result.files.kohya_path):
        meta = read_lora_metadata(path)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items())
        assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
        assert meta["modelspec.title"] == "Gazetteer test LoRA"
        assert meta["modelspec.trigger_phrase"] == "[U]"
        assert meta["modelspec.license"] == "CC-BY-NC-4.0"
        assert len(meta["modelspec.date"]) == 10
        assert meta["ss_network_dim"] == "4" and meta["ss_network_alpha"] == "16.0"
        assert meta["ss_num_epochs"] == "2" and meta["ss_steps"] == "4"
        assert meta["ss_network_train_unet_only"] == "False"
        assert meta["ss_output_name"] == "gazetteer-test-lora"
        assert meta["heritage.dataset_content_hash"] == "ab" * 32
        assert meta["heritage.dataset_version"] == "3"
        assert meta["heritage.accession_numbers"] == '["XJ-2020-001", "XJ-2020-002"]'
        assert meta["heritage.rights"].startswith("https://creativecommons.org/")
    with safe_open(result.files.diffusers_path, framework="pt") as handle:
        assert "lora_adapter_metadata" in handle.metadata()


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".bin", ".pth"])
def test_pickled_lora_files_are_refused(tmp_path, suffix):
    path = tmp_path / f"lora{suffix}"
    path.write_bytes(b"\x80\x04not even opened")
    with pytest.raises(LoraFileError, match="unpickling runs arbitrary code"):
        read_lora_file(path)
    with pytest.raises(LoraFileError, match="unpickling runs arbitrary code"):
        load_lora_into(object(), path)


def test_corrupt_safetensors_is_refused(tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"garbage")
    with pytest.raises(LoraFileError, match="not a readable safetensors file"):
        read_lora_file(path)


@pytest.fixture(scope="module")
def unet_all_run(tmp_path_factory):
    """The demo experiment's LoRA kind (every U-Net block layer, incl. the demo model's
    text-to-time ``add_embedding``) on the shipped demo model, a few steps at a high rate so the
    adapters change the picture, with a validation image drawn by the in-memory model."""
    from demo.experiment import demo_lora_config, demo_split
    from demo.model_recipe import DEFAULT_OUT_DIR

    train, heldout = demo_split()
    config = demo_lora_config(
        max_steps=4,
        unet_lr=5e-2,
        checkpoint_every_epochs=1,
        validation_prompts=(heldout[0].caption,),
        validation_steps=5,
    )
    result = train_lora(
        config,
        [(s.image, s.caption) for s in train[:8]],
        base_model=DEFAULT_OUT_DIR,
        output_dir=tmp_path_factory.mktemp("unet-all") / "run",
        title="unet_all test LoRA",
    )
    (validation,) = result.validation_images["step-000004"]
    return DEFAULT_OUT_DIR, config, result, np.asarray(Image.open(validation).convert("RGB"))


def draw_validation_prompt(pipe, config) -> np.ndarray:
    image = pipe(
        config.validation_prompts[0],
        num_inference_steps=config.validation_steps,
        guidance_scale=config.validation_guidance_scale,
        height=config.resolution,
        width=config.resolution,
        generator=torch.Generator().manual_seed(config.validation_seed),
    ).images[0]
    return np.asarray(image.convert("RGB"))


def test_unet_all_lora_file_draws_exactly_what_the_run_validated(unet_all_run):
    base, config, result, validated = unet_all_run
    pipe = load_base_pipeline(base)
    pipe.set_progress_bar_config(disable=True)
    assert not np.array_equal(draw_validation_prompt(pipe, config), validated)

    load_lora_into(pipe, result.files.diffusers_path)
    saved, _ = read_lora_file(result.files.diffusers_path)
    layers = {k.split(".lora", 1)[0] for k in saved}
    adapted = {f"unet.{name}" for name, m in pipe.unet.named_modules() if hasattr(m, "lora_A")}
    # Every layer of the file is attached: attention projections, resnet convs, add_embedding.
    assert layers == adapted and len(layers) > 100
    assert any(".attn2.to_k" in name for name in adapted)
    np.testing.assert_array_equal(draw_validation_prompt(pipe, config), validated)


def test_unet_all_gets_no_kohya_file_and_a_note_naming_the_layers(unet_all_run):
    # sd-scripts' and A1111's SD 1.x LoRA have no names for the time embedding or the demo
    # model's text-to-time add_embedding: they would skip them without a word.
    _, _, result, _ = unet_all_run
    assert result.files.kohya_path == "" and result.files.kohya_sha256 == ""
    note = result.files.kohya_note
    assert note.startswith("No kohya file (A1111, ComfyUI, kohya-ss): ")
    assert "unet.add_embedding.proj" in note and "pytorch_lora_weights.safetensors" in note
    assert kohya_unrepresentable(
        {
            k.removeprefix("unet."): v
            for k, v in read_lora_file(result.files.diffusers_path)[0].items()
        },
        None,
    ) == ["unet.add_embedding.proj", "unet.time_embedding.linear_1", "unet.time_embedding.linear_2"]


def test_kohya_network_args_name_conv_dim_for_resnet_convs():
    # kohya's create_network only builds 3x3-conv LoRAs (resnets) when conv_dim is given.
    kohya = {
        "lora_unet_down_blocks_0_resnets_0_conv1.lora_down.weight": torch.zeros(4, 32, 3, 3),
        "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32, 1, 1),
    }
    assert _kohya_network_args(kohya, rank=4, alpha=8) == {"conv_dim": "4", "conv_alpha": "8.0"}
    assert _kohya_network_args(dict(list(kohya.items())[1:]), rank=4, alpha=8) == {}


def test_a_lora_that_would_lose_layers_is_refused_and_leaves_no_adapter(unet_all_run, tmp_path):
    # A kohya file written anyway (by another tool, or Atelier before the note): diffusers'
    # kohya loader skips add_embedding with at most a log line; loading it here is refused.
    from safetensors.torch import save_file

    base, config, result, _ = unet_all_run
    saved, _ = read_lora_file(result.files.diffusers_path)
    peft = {k.removeprefix("unet."): v for k, v in saved.items()}
    path = tmp_path / "unet-all.safetensors"
    save_file(to_kohya(peft, None, alpha=config.alpha), str(path))
    pipe = load_base_pipeline(base)
    with pytest.raises(LoraFileError, match=r"1 LoRA layer.*add_embedding"):
        load_lora_into(pipe, path)
    assert pipe.get_list_adapters() == {}
