"""One job state: a run or request reads its status from its Job; reading never writes."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from generation.models import GenerationRequest, TrainingRun
from jobs.models import Job

pytestmark = pytest.mark.django_db


def test_a_run_reads_its_jobs_outcome_with_no_write_on_get(
    curator_client, client, curator, base_model, frozen_dataset
):
    client.force_login(curator)
    job = Job.objects.create(kind="generation.train", queue="gpu", timeout=60)
    run = TrainingRun.objects.create(
        dataset=frozen_dataset, base_model=base_model, settings={"rank": 4}, job=job
    )
    assert curator_client.get(f"/api/v1/training-runs/{run.pk}/").json()["status"] == "queued"
    # The worker died on its last attempt: the reconciler fails the job, and only the job.
    Job.objects.filter(pk=job.pk).update(
        status="failed",
        finished_at=timezone.now(),
        error="worker gpu-1:42 died while running this job; all 3 attempts used",
    )
    with CaptureQueriesContext(connection) as queries:
        body = curator_client.get(f"/api/v1/training-runs/{run.pk}/").json()
        page = client.get(f"/curator/generation/runs/{run.pk}/")
    assert body["status"] == "failed" and body["finished_at"] is not None
    assert body["error"] == "worker gpu-1:42 died while running this job; all 3 attempts used"
    assert page.status_code == 200 and "failed" in page.content.decode()
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert writes == []
    # Lists filter on the job's status.
    failed = curator_client.get("/api/v1/training-runs/?status=failed").json()
    assert [r["id"] for r in failed["results"]] == [run.pk]
    assert curator_client.get("/api/v1/training-runs/?status=running").json()["count"] == 0
    bad = curator_client.get("/api/v1/training-runs/?status=lost")
    assert bad.status_code == 400


def test_a_request_filters_on_its_jobs_status(curator_client, base_model):
    done = Job.objects.create(kind="generation.generate", status="succeeded", timeout=60)
    waiting = Job.objects.create(kind="generation.generate", timeout=60)
    finished = GenerationRequest.objects.create(
        prompt="a", final_prompt="a", base_model=base_model, seeds=[1], job=done
    )
    GenerationRequest.objects.create(
        prompt="b", final_prompt="b", base_model=base_model, seeds=[2], job=waiting
    )
    listed = curator_client.get("/api/v1/generation-requests/?status=succeeded").json()
    assert [r["id"] for r in listed["results"]] == [finished.pk]
    assert listed["results"][0]["status"] == "succeeded"
