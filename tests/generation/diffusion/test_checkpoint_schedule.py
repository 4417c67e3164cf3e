"""Issue 16: checkpoints by step count with a cap and keep-last-K; final loss as a mean."""

from __future__ import annotations

import pytest

from generation.diffusion.config import LoraTrainingConfig
from generation.diffusion.train import final_loss_mean, train_lora
from tests.generation.diffusion.lora_helpers import one_torch_thread, save_tiny_base, tiny_examples


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    yield from one_torch_thread()


def test_schedule_by_steps_with_a_cap():
    # The run: 8 images, batch 2 (4 steps an epoch... here 3), every 5 epochs of a
    # 70-epoch run gave 14 checkpoints; the cap keeps at most 10, the last one at the end.
    every_5_epochs = LoraTrainingConfig(checkpoint_every_epochs=5)
    steps = every_5_epochs.checkpoint_steps(total_steps=210, steps_per_epoch=3)
    assert len(steps) == 10 and steps[-1] == 210
    assert LoraTrainingConfig(checkpointing_steps=50).checkpoint_steps(120, 3) == [50, 100, 120]
    capped = LoraTrainingConfig(checkpointing_steps=1, max_checkpoints=3)
    assert capped.checkpoint_steps(30, 3) == [10, 20, 30]
    assert LoraTrainingConfig().checkpoint_steps(0, 3) == []
    errors = LoraTrainingConfig(max_checkpoints=0).validate()
    assert "max_checkpoints must be a whole number of at least 1 (got 0)." in errors


def test_final_loss_is_the_mean_of_the_last_steps():
    log = [{"step": i, "loss": float(i)} for i in range(1, 41)]
    assert final_loss_mean(log) == pytest.approx(sum(range(21, 41)) / 20)
    assert final_loss_mean(log[:3]) == pytest.approx(2.0)
    assert final_loss_mean([]) is None


def test_keep_last_checkpoints_and_the_step_schedule(tmp_path):
    base = save_tiny_base(tmp_path / "model")
    config = LoraTrainingConfig(
        resolution=32,
        rank=4,
        alpha=4.0,
        train_batch_size=2,
        epochs=4,
        checkpointing_steps=4,  # every 2 epochs of 2 steps
        keep_last_checkpoints=1,
    )
    result = train_lora(config, tiny_examples(4), base_model=base, output_dir=tmp_path / "run")
    on_disk = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("checkpoint-*"))
    assert on_disk == ["checkpoint-000008.safetensors"]
    assert [r["step"] for r in result.checkpoint_log] == [4, 8]
    assert result.final_loss_mean is not None and result.final_loss is not None
