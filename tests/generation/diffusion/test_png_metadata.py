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
        lora_sha256="b" * 64,
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
