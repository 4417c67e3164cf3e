"""Metrics of a finished training run's validation images (000_799139077b62291c).

Registered with ``generation.services.register_run_metrics`` in ``EvaluationConfig.ready``:
the training job asks the registry for them (generation sits below evaluation and does not
import it), so the metric code stays with the other metrics.
"""

from __future__ import annotations

import io
import random
from typing import Any

from archives.services import stored_file_read


def training_validation_metrics(run, config) -> dict[str, Any]:
    """MSE/PSNR/SSIM of the final validation images against the dataset's validation crops.

    As 000_799139077b62291c: LoRA and base model images, each against the reference images.
    Prompt i pairs with the i-th validation example (the validation prompts default to the
    captions of the validation split, see generation.services.training_run_create).
    ``config`` is the run's training config (``validation_seed`` numbers the prompts).
    """
    from PIL import Image

    from evaluation.metrics import (
        MAX_REFERENCE_OTHERS,
        as_rgb_array,
        pair_metrics,
        reference_summaries,
        summarise,
    )
    from heritage.selectors import dataset_examples

    images = list(run.validation_images.all())
    if not images:
        return {}
    references = list(dataset_examples(run.dataset, split="validation")) or list(
        dataset_examples(run.dataset, split="train")
    )
    decoded: dict[int, Any] = {}

    def crop_pixels(stored) -> Any:  # each reference crop is read and decoded once
        if stored.pk not in decoded:
            decoded[stored.pk] = as_rgb_array(Image.open(io.BytesIO(stored_file_read(stored))))
        return decoded[stored.pk]

    last_step = max(v.step for v in images)
    metrics: dict[str, Any] = {}
    for condition, step in (("lora", last_step), ("base", 0)):
        pairs = []
        for image in images:
            if image.condition != condition or image.step != step:
                continue
            # By prompt index, from the seed: equal captions still pair with their own crop.
            index = image.seed - config.validation_seed
            if not 0 <= index < len(references):
                continue
            ref = crop_pixels(references[index].crop)
            generated = Image.open(io.BytesIO(stored_file_read(image.file)))
            gen = as_rgb_array(generated, (ref.shape[1], ref.shape[0]))
            pairs.extend(pair_metrics(gen, ref))
        if pairs:
            metrics[condition] = _metric_row(summarise(pairs))
    if metrics:
        # Images no model drew, against the same references: the training crops (the style,
        # in other layouts; a seeded sample of MAX_REFERENCE_OTHERS; never a reference itself)
        # and flat mean colours.
        used = {r.pk for r in references}
        train = [
            ex.crop
            for ex in dataset_examples(run.dataset, split="train")
            if ex.crop_id and ex.pk not in used
        ]
        train = random.Random(0).sample(train, min(len(train), MAX_REFERENCE_OTHERS))
        refs = reference_summaries(
            [crop_pixels(r.crop) for r in references], [crop_pixels(c) for c in train]
        )
        for name, key in (("reference_training", "others"), ("reference_flat", "flat")):
            if key in refs:
                metrics[name] = _metric_row(refs[key])
    return metrics


def _metric_row(summary) -> dict[str, Any]:
    return {
        "n": summary.n_pairs,
        "mse": summary.mse_mean,
        "psnr": summary.psnr_mean,
        "ssim": summary.ssim_mean,
    }
