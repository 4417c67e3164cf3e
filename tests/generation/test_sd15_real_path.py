"""The real Stable Diffusion 1.5 training path on the CPU, through the jobs a GPU worker runs.

SD 1.5's own architecture (U-Net 860 M, CLIP ViT-L/14 text encoder, VAE) with random weights
built from its configs (nothing downloaded), saved once per session as an fp16 diffusers
folder and registered as the base model. At 64 px (8x8 latents) each preset trains 4 steps
(checkpoint every 2) in a real RQ worker that is SIGKILLed after the first checkpoint; a
second worker resumes from it; a third loads the LoRA and draws an image with provenance.
At these widths bitsandbytes keeps real 8-bit state (factors of 4096 elements or more), which
the tiny test models never reach.

The fast tests beside it check what the run's settings are before anything is queued: the
dataset's trigger (a preset never overrides it) and the base model's prediction type.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors import safe_open

from archives.services import stored_file_open, stored_file_read
from generation.diffusion.png_metadata import read_png_metadata
from generation.models import GenerationRequest, TrainingCheckpoint, TrainingRun
from jobs.models import Job
from jobs.reconcile import jobs_reconcile
from tests.conftest import wait_for
from tests.generation.conftest import striped_png

ROOT = Path(__file__).resolve().parents[2]
STEPS = 4  # 2 training images, batch 2 (both presets): one step per epoch
# Runs in a child process, so the test process never holds the 3.4 GB fp32 U-Net.
BUILD_SD15 = """
import json, sys
from pathlib import Path
import torch
from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel
from generation.diffusion import pipeline as p
from generation.diffusion.tokenizer import load_tokenizer

torch.manual_seed(0)
out = Path(sys.argv[1])
# One component at a time, halved at once: fp16 on disk (half the bytes to write and read;
# the loader upcasts to fp32), the peak is one fp32 U-Net.
unet = UNet2DConditionModel(**p.SD15_UNET_CONFIG).half()
vae = AutoencoderKL(**p.SD15_VAE_CONFIG).half()
text_encoder = CLIPTextModel(CLIPTextConfig(**p.SD15_TEXT_ENCODER_CONFIG)).half()
pipe = StableDiffusionPipeline(
    unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=load_tokenizer(p.TOKENIZER_DIR),
    scheduler=DDIMScheduler.from_config(p.SD15_SCHEDULER_CONFIG), safety_checker=None,
    feature_extractor=None, requires_safety_checker=False,
)
pipe.save_pretrained(out, safe_serialization=True)
print(json.dumps({"sha256": p.base_model_sha256(out)}))
"""


@pytest.fixture(scope="session")
def sd15_model(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("sd15-random") / "model"
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", BUILD_SD15, str(folder)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\nSD 1.5 (random, fp16) built and saved in {time.monotonic() - started:.1f} s")
    return {"path": str(folder), **report}


@pytest.fixture
def sd15_base(db, sd15_model):
    from generation.models import BaseModel

    return BaseModel.objects.create(
        name="sd15-random",
        path=sd15_model["path"],
        kind="diffusers",
        sha256=sd15_model["sha256"],
        resolution=512,
        is_default=True,
    )


def _dataset(name: str, trigger: str, size: int = 64):
    """4 unannotated images: every caption is the bare trigger, so the 2 validation
    prompts (the validation split's captions) are the same text, as controlled vocabularies
    make common."""
    from heritage import services

    collection = services.collection_create(slug=name, title={"en": name}, published=True)
    for index in range(4):
        item = services.item_create(
            collection=collection,
            accession_number=f"{name.upper()}-{index}",
            title={"en": f"{name} {index}"},
            rights="http://rightsstatements.org/vocab/NoC-US/1.0/",
            published=True,
        )
        services.item_image_create(
            item=item,
            content=striped_png(index, size=size),
            filename=f"{index}.png",
            derivatives="none",
        )
    dataset = services.training_dataset_create(
        name=name,
        trigger_token=trigger,
        resolution=size,
        collections=[name],
        validation_fraction=0.5,
        caption_template="{trigger}, {motifs}",  # no curator words: the bare trigger
    )
    return services.training_dataset_freeze(dataset=dataset)


@pytest.fixture
def qxls_dataset(db):
    return _dataset("landscape", "qxls")


# --- before queueing: trigger and prediction type ---------------------------------------------


def test_a_preset_never_overrides_the_datasets_trigger(curator_client, base_model):
    dataset = _dataset("scroll", "qxls", size=32)
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": dataset.pk, "preset": "gazetteer-001", "settings": {"epochs": 1}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["settings"]["trigger_token"] == "qxls" and body["trigger_token"] == "qxls"
    assert body["settings"]["optimizer"] == "adamw8bit"  # the rest of the preset applies

    jobs = Job.objects.count()
    refused = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": dataset.pk, "preset": "gazetteer-001", "settings": {"trigger_token": "[U]"}},
        format="json",
    )
    assert refused.status_code == 400
    assert "differs from the dataset's 'qxls'" in refused.content.decode()
    assert Job.objects.count() == jobs and TrainingRun.objects.count() == 1


def test_a_dataset_with_a_malformed_trigger_is_refused_with_the_fix(curator_client, base_model):
    dataset = _dataset("scroll", "qx ls style", size=32)
    response = curator_client.post(
        "/api/v1/training-runs/", {"dataset": dataset.pk, "preset": "atlas-000"}, format="json"
    )
    assert response.status_code == 400
    text = response.content.decode()
    assert "without spaces, commas or brackets" in text and "use 'qxlsstyle'" in text
    assert not TrainingRun.objects.exists() and not Job.objects.exists()


def test_a_base_model_predicting_samples_is_refused_before_queueing(
    curator_client, frozen_dataset, tiny_model_dir, tmp_path
):
    import shutil

    from generation.diffusion.pipeline import base_model_sha256
    from generation.models import BaseModel

    folder = tmp_path / "sample-model"
    shutil.copytree(tiny_model_dir, folder)
    config_path = folder / "scheduler" / "scheduler_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "prediction_type": "sample"}))
    model = BaseModel.objects.create(
        name="predicts-sample",
        path=str(folder),
        kind="diffusers",
        sha256=base_model_sha256(folder),
        resolution=32,
        is_default=True,
    )
    response = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "base_model": model.pk},
        format="json",
    )
    assert response.status_code == 400
    assert "prediction_type is 'sample'; training supports epsilon and v_prediction" in (
        response.content.decode()
    )
    assert not TrainingRun.objects.exists()


# --- the real architecture, end to end ---------------------------------------------------------


def _finished_job(job_id: int):
    job = Job.objects.get(pk=job_id)
    return job if job.is_finished else None


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.parametrize("preset", ["atlas-000", "gazetteer-001"])
def test_each_preset_trains_resumes_and_generates_on_sd15(
    preset, start_worker, curator_client, sd15_base, qxls_dataset, monkeypatch
):
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # one SD 1.5 process at a time uses both cores
    started = time.monotonic()
    response = curator_client.post(
        "/api/v1/training-runs/",
        {
            "dataset": qxls_dataset.pk,
            "preset": preset,
            "settings": {
                "epochs": STEPS,
                "checkpoint_every_epochs": 2,
                "validation_steps": 2,
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    run_id, job_id = response.json()["id"], response.json()["job"]
    run = TrainingRun.objects.get(pk=run_id)
    assert run.trigger_token == "qxls"  # the dataset's, whatever the preset says
    assert run.settings["validation_prompts"] == ["qxls", "qxls"]  # duplicates

    # A SIGKILL after the first checkpoint (step 2) is stored, while steps 3-4 remain.
    first = start_worker(("gpu",))
    wait_for(
        lambda: TrainingCheckpoint.objects.filter(run_id=run_id).exists() or _finished_job(job_id),
        timeout=300,
        interval=0.05,
        message=first.output(),
    )
    first.process.kill()
    first.process.wait()
    job = Job.objects.get(pk=job_id)
    assert job.status == "running", f"{job.status}: {job.error}\n{first.output()[-3000:]}"
    assert list(TrainingCheckpoint.objects.filter(run_id=run_id).values_list("step")) == [(2,)]
    assert jobs_reconcile()["requeued_orphaned"] == 1

    second = start_worker(("gpu",))
    job = wait_for(lambda: _finished_job(job_id), timeout=300, message=second.output())
    assert job.status == "succeeded", f"{job.error}\n{second.output()[-3000:]}"
    second.stop()  # one SD 1.5 in memory at a time
    trained_at = time.monotonic()

    body = curator_client.get(f"/api/v1/training-runs/{run_id}/").json()
    assert body["metrics"]["resumed_from_step"] == 2  # from the checkpoint, not from zero
    assert body["metrics"]["steps"] == STEPS
    assert [p["step"] for p in body["loss_log"]] == list(range(1, STEPS + 1))
    assert [c["step"] for c in body["checkpoints"]] == [2, 4]
    # Each duplicate prompt has its own image, paired with its own reference crop.
    final = [v for v in body["validation_images"] if v["condition"] == "lora" and v["step"] == 4]
    assert sorted(v["seed"] for v in final) == [0, 1]
    assert body["metrics"]["lora"]["n"] == body["metrics"]["base"]["n"] == 2

    run.refresh_from_db()
    with stored_file_open(run.lora_kohya) as handle:
        with safe_open(handle.name, framework="pt") as kohya:
            keys = list(kohya.keys())
            header = kohya.metadata()
    assert any(k.startswith("lora_unet_") for k in keys)
    assert any(k.startswith("lora_te_") for k in keys) == (preset == "gazetteer-001")
    assert header["modelspec.trigger_phrase"] == "qxls"
    with stored_file_open(run.lora_diffusers) as handle:
        with safe_open(handle.name, framework="pt") as diffusers_file:
            assert len(list(diffusers_file.keys())) > 0
    # The 8-bit run's checkpoint really holds 8-bit state (stored once per shared map).
    with stored_file_open(run.checkpoints.get(step=4).archive) as handle:
        with safe_open(handle.name, framework="pt") as checkpoint:
            names = list(checkpoint.keys())
            dtypes = {checkpoint.get_slice(k).get_dtype() for k in names if ".state1" in k}
    if preset == "gazetteer-001":
        assert "U8" in dtypes and sum(k.endswith(".qmap1") for k in names) == 1

    # The generation worker loads the LoRA and draws one image with provenance.
    created = curator_client.post(
        "/api/v1/generation-requests/",
        {
            "prompt": "misty mountains",
            "training_run": run_id,
            "seeds": [5],
            "steps": 2,
            "width": 64,
            "height": 64,
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["final_prompt"] == "qxls, misty mountains"
    third = start_worker(("gpu",))
    request_job = created.json()["job"]
    job = wait_for(lambda: _finished_job(request_job), timeout=300, message=third.output())
    assert job.status == "succeeded", f"{job.error}\n{third.output()[-3000:]}"
    image = GenerationRequest.objects.get(pk=created.json()["id"]).images.get()
    assert (image.width, image.height) == (64, 64)
    _, provenance = read_png_metadata(stored_file_read(image.file))
    assert provenance["lora"]["sha256"] == run.lora_diffusers.sha256
    assert provenance["lora"]["trigger_token"] == "qxls"
    assert provenance["base_model"]["sha256"] == sd15_base.sha256
    print(
        f"\n{preset}: trained (with kill + resume) in {trained_at - started:.0f} s, "
        f"{body['metrics']['seconds_per_step']:.2f} s/step after resume, peak RSS "
        f"{body['peak_memory_bytes'] / 2**30:.2f} GiB; generated in "
        f"{time.monotonic() - trained_at:.0f} s"
    )
