"""A1111 parameters text and the provenance chunk survive a PNG round trip (UTF-8 included)."""

from PIL import Image

from generation.diffusion.png_metadata import (
    ImageParameters,
    a1111_parameters,
    parse_a1111_parameters,
    png_with_metadata,
    read_png_metadata,
)


def test_round_trip_with_chinese_prompt_and_lora():
    params = ImageParameters(
        prompt="[U], 山水, misty mountains",
        negative_prompt="blurry, text",
        steps=35,
        sampler="dpmpp",
        cfg=7.0,
        seed=4294967295,
        width=512,
        height=512,
        model_name="sd15",
        model_sha256="a" * 64,
        lora_name="gazetteer",
        lora_hash="b" * 64,
        lora_scale=0.8,
    )
    text = a1111_parameters(params)
    assert text.splitlines()[0] == "[U], 山水, misty mountains <lora:gazetteer:0.8>"
    data = png_with_metadata(
        Image.new("RGB", (8, 8)), parameters=text, provenance={"request_id": 3, "prompt": "山水"}
    )
    parameters, provenance = read_png_metadata(data)
    assert parameters == text
    assert provenance == {"request_id": 3, "prompt": "山水"}
    fields = parse_a1111_parameters(parameters)
    assert fields["Negative prompt"] == "blurry, text"
    assert fields["Sampler"] == "DPM++ 2M" and fields["Seed"] == "4294967295"
    assert fields["Model hash"] == "a" * 10
    assert fields["Lora hashes"] == "gazetteer: " + "b" * 12
    assert fields["Size"] == "512x512" and fields["CFG scale"] == "7"


def test_values_with_separators_are_quoted_as_a1111_writes_them():
    params = ImageParameters(
        prompt="[U], mountains",
        negative_prompt="",
        steps=35,
        sampler="ddim",
        cfg=7.0,
        seed=1,
        width=512,
        height=512,
        model_name="Gazetteer base, v2: fp16",
        model_sha256="c" * 64,
        extra={"Note": 'say "hi"', "Plain": "value"},
    )
    settings = a1111_parameters(params).splitlines()[-1]
    # json-quoted (A1111's infotext_utils.quote): the comma no longer splits the value
    assert 'Model: "Gazetteer base, v2: fp16"' in settings
    assert 'Note: "say \\"hi\\""' in settings and "Plain: value" in settings
    fields = parse_a1111_parameters(a1111_parameters(params))
    assert fields["Model"] == "Gazetteer base, v2: fp16"
    assert fields["Note"] == 'say "hi"' and fields["Plain"] == "value"
    assert fields["Steps"] == "35"


def test_lora_tag_and_hash_name_the_kohya_file_as_a1111_finds_it(tmp_path):
    """A1111 finds a LoRA by ``<lora:NAME:w>`` (file stem or ss_output_name) and by the first
    12 hex digits of its addnet hash (sshs_model_hash, else sha256 after the header)."""
    import hashlib

    from peft import LoraConfig

    from demo.tiny import build_tiny_pipeline
    from generation.diffusion.config import LoraTrainingConfig
    from generation.diffusion.lora_files import build_metadata, read_lora_metadata, save_lora_files
    from generation.diffusion.png_metadata import a1111_lora_reference

    pipe = build_tiny_pipeline()
    pipe.unet.add_adapter(
        LoraConfig(r=4, lora_alpha=8, init_lora_weights="gaussian", target_modules=["to_k"])
    )
    config = LoraTrainingConfig(rank=4, alpha=8.0, target="unet_attention")
    meta = build_metadata(config, title="Silk, Atlas: 2024", steps=1, epochs=1, num_images=1)
    files = save_lora_files(tmp_path, unet=pipe.unet, alpha=8.0, metadata=meta)
    kohya = tmp_path / "silk-atlas-2024.safetensors"
    assert files.kohya_path == str(kohya)
    data = kohya.read_bytes()
    name, lora_hash = a1111_lora_reference(kohya.name, data)
    after_header = data[8 + int.from_bytes(data[:8], "little") :]
    assert lora_hash == hashlib.sha256(after_header).hexdigest()
    assert name == read_lora_metadata(kohya)["ss_output_name"] == kohya.stem
    assert lora_hash == read_lora_metadata(kohya)["sshs_model_hash"]

    params = ImageParameters(
        prompt="[U], silk",
        negative_prompt="",
        steps=10,
        sampler="ddim",
        cfg=7.0,
        seed=3,
        width=64,
        height=64,
        model_name="tiny",
        model_sha256="a" * 64,
        lora_name=name,
        lora_hash=lora_hash,
    )
    text = a1111_parameters(params)
    assert text.splitlines()[0] == "[U], silk <lora:silk-atlas-2024:1>"
    assert f'Lora hashes: "silk-atlas-2024: {lora_hash[:12]}"' in text
    assert parse_a1111_parameters(text)["Lora hashes"] == f"silk-atlas-2024: {lora_hash[:12]}"
