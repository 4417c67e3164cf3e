"""The worker's pipeline cache: base loaded once, LoRAs switched without reloading, bounded."""

import numpy as np
import pytest

from generation.diffusion import inference
from generation.diffusion.pipeline import file_sha256


@pytest.fixture(scope="module")
def cache_and_base(tiny_model_dir):
    return inference.PipelineCache(max_bases=1, max_adapters=1), inference.BaseSpec(
        str(tiny_model_dir)
    )


def test_lora_switches_on_and_off_without_reloading(cache_and_base, tiny_lora_file, tmp_path):
    import shutil

    cache, base = cache_and_base
    settings = inference.RenderSettings(prompt="a mountain", steps=3, width=32, height=32)
    lora = inference.LoraSpec(str(tiny_lora_file), file_sha256(tiny_lora_file))
    plain = np.asarray(inference.render_with_cache(cache, base, settings, 1))
    with_lora = np.asarray(inference.render_with_cache(cache, base, settings, 1, lora=lora))
    again = np.asarray(inference.render_with_cache(cache, base, settings, 1))
    zero = np.asarray(
        inference.render_with_cache(cache, base, settings, 1, lora=lora, lora_scale=0)
    )
    assert not np.array_equal(plain, with_lora)
    assert np.array_equal(plain, again)  # the adapter is off again: exactly the base output
    assert np.array_equal(plain, zero)
    assert cache.base_loads == 1 and cache.lora_loads == 1
    # A second LoRA evicts the first (max_adapters=1), still without reloading the base.
    other = tmp_path / "other.safetensors"
    shutil.copy(tiny_lora_file, other)
    second = inference.LoraSpec(str(other), "f" * 64)
    inference.render_with_cache(cache, base, settings, 1, lora=second)
    assert cache.base_loads == 1 and cache.lora_loads == 2
    assert cache.entry(base).adapters.keys() == {second.adapter_name}


def test_every_sampler_runs_and_seeds_repeat(cache_and_base):
    cache, base = cache_and_base
    for sampler in inference.SAMPLERS:
        settings = inference.RenderSettings(
            prompt="a river", sampler=sampler, steps=3, width=32, height=32
        )
        a = np.asarray(inference.render_with_cache(cache, base, settings, 9))
        b = np.asarray(inference.render_with_cache(cache, base, settings, 9))
        assert np.array_equal(a, b)
    assert cache.base_loads == 1


def test_pickled_lora_refused(cache_and_base, tmp_path):
    cache, base = cache_and_base
    bad = tmp_path / "lora.ckpt"
    bad.write_bytes(b"x")
    with pytest.raises(ValueError, match="unpickling runs arbitrary code"):
        cache.use_lora(base, inference.LoraSpec(str(bad), "0" * 64))
