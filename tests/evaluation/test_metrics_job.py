"""The evaluation.metrics job through a real worker process on the default queue."""

from __future__ import annotations

import pytest
from django.test import Client

from evaluation import selectors, services
from evaluation.models import MemorisationCheck, MetricResult, Panel
from jobs.models import Job
from tests.conftest import make_user, wait_for
from tests.evaluation.conftest import make_world


@pytest.mark.worker
def test_metrics_job_runs_on_a_real_worker(start_worker):
    world = make_world(tag="w", near_copy_seed=0)
    expert = make_user("wexp", "expert")
    curator = make_user("wcur", "curator")
    panel = Panel.objects.create(name="worker panel")
    panel.members.set([expert])
    study = services.study_create(title="w", panel=panel, generated_images=world.images, seed=1)
    # The item's reference image (held-out: in no dataset) and its 3 training images.
    training = [ex.image_id for ex in world.examples]
    services.study_references_set(study=study, image_ids=[world.reference.pk, *training])
    worker = start_worker(("default",))
    c = Client()
    c.force_login(curator)
    response = c.post(f"/api/v1/evaluation/studies/{study.pk}/metrics/")
    assert response.status_code == 202
    job_id = response.json()["job"]

    def finished():
        job = Job.objects.get(pk=job_id)
        return job if job.status in ("succeeded", "failed", "cancelled") else None

    job = wait_for(finished, message=f"job did not finish:\n{worker.output()}")
    assert job.status == "succeeded", job.error
    assert job.queue == "default" and job.kind == "evaluation.metrics"
    assert job.progress == 1.0
    copy = next(g for g in world.images if g.condition == "lora" and g.seed == 0)
    assert job.result["near_copies"] == [copy.pk]
    assert MetricResult.objects.filter(study=study).count() == 4 * 4
    assert MemorisationCheck.objects.count() == 4
    flags = selectors.near_copy_flags([g.pk for g in world.images])
    assert [pk for pk, f in flags.items() if f["near_copy"]] == [copy.pk]
    report = c.get(f"/api/v1/evaluation/studies/{study.pk}/report/").json()
    assert report["near_copies"] == [copy.pk]
    assert {(m["protocol"], m["condition"]) for m in report["metrics"]} == {
        (p, c) for p in ("reproduction", "held_out") for c in ("base", "lora")
    }
    # Reference rows: the LoRA's 3 training images against the held-out reference (training
    # images are no reference of the held-out metrics), and a flat image of it.
    refs = {m["condition"]: m for m in report["metric_references"]}
    assert list(refs) == [services.REFERENCE_OTHERS, services.REFERENCE_FLAT]
    assert refs[services.REFERENCE_OTHERS]["n_pairs"] == 3
    assert refs[services.REFERENCE_FLAT]["n_pairs"] == 1
    # The distribution protocol, per run and condition, against the held-out reference.
    dist = {d["condition"]: d for d in report["distribution"]}
    assert set(dist) == {"base", "lora"} and dist["lora"]["n_references"] == 1
    assert dist["lora"]["features"]["status"] == "not configured"
    assert refs[services.REFERENCE_OTHERS]["n_identical"] == 0
    page = c.get(f"/evaluation/studies/{study.pk}/report/").content.decode()
    assert "Reference rows." in page and services.REFERENCE_FLAT in page
    csv_text = c.get(f"/evaluation/studies/{study.pk}/report.csv").content.decode()
    assert f"metrics_reference,,{services.REFERENCE_OTHERS},3," in csv_text
    assert "metrics_distribution,distribution,lora (run " in csv_text
