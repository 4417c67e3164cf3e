"""Registering a base model: the request does the cheap checks and answers 202 at once; the
``generation.base_model_register`` job (a real worker, default queue) loads it once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generation.diffusion.pipeline import file_sha256
from generation.models import BaseModel
from jobs.models import Job
from tests.conftest import wait_for


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # The worker and its child process inherit this: any hub access would fail.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# Written by diffusers' own convert_diffusers_to_original_stable_diffusion.py, its configs in
# tiny-sd1.config/ beside it (tests/fixtures/make_sd1_single_file.py).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def checkpoint(tmp_path):
    """The fixture checkpoint alone in a folder (no configs beside it), as tiny-original."""
    path = tmp_path / "tiny-original.safetensors"
    shutil.copy(FIXTURES / "tiny-sd1.safetensors", path)
    return path


def finished(client, model_id: int) -> dict | None:
    body = client.get(f"/api/v1/base-models/{model_id}/").json()
    return body if body["state"] != "registering" else None


@pytest.mark.worker
def test_a_folder_registers_in_its_job_and_is_refused_until_then(
    start_worker, curator_client, tiny_model_dir, frozen_dataset
):
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "tiny", "path": str(tiny_model_dir)}, format="json"
    )
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["state"], body["sha256"], body["is_default"]) == ("registering", "", False)
    job = Job.objects.get(pk=body["job"])
    assert (job.kind, job.queue, job.status) == (
        "generation.base_model_register",
        "default",
        "queued",
    )
    # Nothing may use it before it has loaded once.
    run = curator_client.post(
        "/api/v1/training-runs/",
        {"dataset": frozen_dataset.pk, "base_model": body["id"], "preset": "atlas-000"},
        format="json",
    )
    assert run.status_code == 400 and "still being registered" in run.content.decode()
    assert not Job.objects.filter(kind="generation.train").exists()

    worker = start_worker(("default",))
    done = wait_for(lambda: finished(curator_client, body["id"]), message=worker.output())
    assert done["state"] == "ready", done
    assert (done["kind"], done["resolution"], done["is_default"]) == ("diffusers", 32, True)
    assert len(done["sha256"]) == 64
    job.refresh_from_db()
    assert job.status == "succeeded" and job.result["sha256"] == done["sha256"]


@pytest.mark.worker
def test_single_files_register_or_fail_with_the_fix_and_the_name_can_be_reused(
    start_worker, curator_client, checkpoint
):
    # Without its configs the tiny file is not SD 1.5-sized: the job fails and says why.
    response = curator_client.post(
        "/api/v1/base-models/", {"name": "tiny file", "path": str(checkpoint)}, format="json"
    )
    assert response.status_code == 202, response.content
    worker = start_worker(("default",))
    failed = wait_for(
        lambda: finished(curator_client, response.json()["id"]),
        message=worker.output(),
    )
    assert failed["state"] == "failed"
    assert "tensor sizes differ" in failed["error"]
    assert "tiny-original.config/ beside the file" in failed["error"]
    assert "Traceback" not in Job.objects.get(pk=failed["job"]).error
    assert not BaseModel.objects.ready().filter(name="tiny file").exists()

    # With its configs beside it, the same name registers (the failed row gives way).
    config = checkpoint.with_name("tiny-original.config")
    shutil.copytree(FIXTURES / "tiny-sd1.config", config)
    try:
        again = curator_client.post(
            "/api/v1/base-models/", {"name": "tiny file", "path": str(checkpoint)}, format="json"
        )
        assert again.status_code == 202, again.content
        done = wait_for(
            lambda: finished(curator_client, again.json()["id"]),
            message=worker.output(),
        )
    finally:
        shutil.rmtree(config)
    assert done["state"] == "ready", done
    assert done["kind"] == "single_file" and done["resolution"] == 128
    assert done["sha256"] == file_sha256(checkpoint)
    assert BaseModel.objects.get(name="tiny file").path == str(checkpoint)
