"""A training run and a study exported as bags by a real worker, downloaded, validated and
imported back into an emptied database: the same records and the same file checksums."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import pytest
from django.contrib.auth.models import User
from django.core.files.storage import default_storage

from archives.models import BagExport, StoredFile
from archives.services import stored_file_save
from evaluation import services as evaluation_services
from evaluation.models import MetricResult, Panel, Rating, Study, StudyItem
from generation.models import BaseModel, GeneratedImage, GenerationRequest, TrainingRun
from heritage import services as heritage_services
from jobs.models import Job
from tests.archives.bagtools import catalogue_snapshot, flush_catalogue, make_archivist
from tests.conftest import make_user, wait_for
from tests.generation.conftest import striped_png


def build_run_and_study() -> tuple[TrainingRun, Study]:
    curator = make_user("kurator", "curator", first_name="Mehmet")
    expert = make_user("rater1", "expert", first_name="Ayse")
    collection = heritage_services.collection_create(slug="silk", title={"en": "Silk"})
    for index in range(4):
        item = heritage_services.item_create(
            collection=collection, accession_number=f"SILK-{index}", title={"en": f"S{index}"}
        )
        image = heritage_services.item_image_create(
            item=item, content=striped_png(index), filename=f"{index}.png", derivatives="none"
        )
        heritage_services.annotation_create(
            image=image, category="iconographic", meaning={"en": "stripes"}, annotator=curator
        )
    dataset = heritage_services.training_dataset_create(
        name="silk",
        resolution=32,
        collections=["silk"],
        validation_fraction=0.25,
        include_unpublished=True,  # an unpublished collection, as archives often hold
        user=curator,
    )
    dataset = heritage_services.training_dataset_freeze(dataset=dataset)
    base = BaseModel.objects.create(
        name="tiny", path="/models/tiny", kind="diffusers", sha256="ab" * 32, is_default=True
    )
    job = Job.objects.create(kind="generation.train", status="succeeded", timeout=60)
    run = TrainingRun.objects.create(
        name="silk lora",
        dataset=dataset,
        base_model=base,
        preset="atlas",
        settings={"learning_rate": 8e-4, "train_batch_size": 2, "epochs": 100},
        job=job,
        loss_log=[{"step": 1, "loss": 0.25}, {"step": 2, "loss": 0.125}],
        final_loss=0.125,
        lora_diffusers=stored_file_save(name="generation/run/lora.safetensors", content=b"L" * 99),
        lora_kohya=stored_file_save(name="generation/run/lora_kohya.safetensors", content=b"K"),
        trigger_token="[U]",
        created_by=curator,
    )
    request = GenerationRequest.objects.create(
        prompt="[U], silk",
        final_prompt="[U], silk",
        base_model=base,
        training_run=run,
        seeds=[1, 2],
        compare_with_base=True,
        job=Job.objects.create(kind="generation.generate", status="succeeded", timeout=60),
        width=48,
        height=48,
        created_by=curator,
    )
    images = [
        GeneratedImage.objects.create(
            request=request,
            file=stored_file_save(name=f"generation/out/{n}.png", content=striped_png(n + 5)),
            seed=n,
            condition=condition,
            prompt="[U], silk",
            width=48,
            height=48,
        )
        for n, condition in enumerate(["lora", "base"])
    ]
    panel = evaluation_services.panel_create(name="Panel A", members=[expert], user=curator)
    study = evaluation_services.study_create(
        title="Silk study", panel=panel, generated_images=images, user=curator
    )
    for item in study.items.all():
        evaluation_services.rating_submit(
            expert=expert, item=item, scores={"style_consistency": 4, "artistic_beauty": 3}
        )
    MetricResult.objects.create(
        study=study,
        generated=images[0],
        reference=dataset.examples.first().image,
        condition="lora",
        mse=12.5,
        psnr=37.2,
        ssim=0.91,
        width=48,
        height=48,
    )
    return run, study


def generation_snapshot() -> dict:
    return {
        "runs": sorted(
            (
                r.name,
                json.dumps(r.settings, sort_keys=True),
                json.dumps(r.loss_log),
                r.lora_diffusers.sha256,
                r.lora_kohya.sha256,
                r.dataset.name,
                r.dataset.version,
                r.dataset.content_hash,
                r.base_model.name,
                r.created_by.username,
                r.created_at.isoformat(),
                r.status,  # read from its job: the imported one says how it ended
                r.error,
            )
            for r in TrainingRun.objects.all()
        ),
        "examples": sorted(
            (e.dataset.name, e.image.original.sha256, e.crop.sha256, e.caption, e.split)
            for r in TrainingRun.objects.all()
            for e in r.dataset.examples.all()
        ),
        "images": sorted(
            (i.file.sha256, i.seed, i.condition, i.request.prompt, i.request.training_run.name)
            for i in GeneratedImage.objects.all()
        ),
    }


def study_snapshot() -> dict:
    return {
        "studies": sorted(
            (s.title, s.panel.name, s.seed, s.created_at.isoformat()) for s in Study.objects.all()
        ),
        "panels": sorted(
            (p.name, tuple(p.members.values_list("username", flat=True)))
            for p in Panel.objects.all()
        ),
        "items": sorted(
            (i.token, i.kind, i.condition, i.blind.sha256, i.generated.file.sha256)
            for i in StudyItem.objects.all()
        ),
        "ratings": sorted(
            (r.item.token, r.expert.username, r.dimension, r.score, r.created_at.isoformat())
            for r in Rating.objects.all()
        ),
        "metrics": sorted(
            (m.generated.file.sha256, m.reference.original.sha256, m.mse, m.psnr, m.ssim)
            for m in MetricResult.objects.all()
        ),
        "files": sorted((f.sha256, f.size) for f in StoredFile.objects.all()),
    }


def flush_everything() -> None:
    for model in (MetricResult, Rating, StudyItem, Study, Panel):
        model.objects.all().delete()
    GeneratedImage.objects.all().delete()
    GenerationRequest.objects.all().delete()
    TrainingRun.objects.all().delete()
    BaseModel.objects.all().delete()
    User.objects.filter(username="rater1").delete()
    flush_catalogue()
    assert not StoredFile.objects.exists()


def download(client, export: BagExport) -> bytes:
    response = client.get(f"/api/v1/archives/bags/{export.pk}/download/")
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.worker
def test_run_and_study_bags_round_trip_through_a_worker(start_worker, client, tmp_path):
    run, study = build_run_and_study()
    client.force_login(make_archivist("keeper"))
    catalogue_before, generation_before = catalogue_snapshot(), generation_snapshot()
    study_before = study_snapshot()

    exports = {}
    for scope, target, fmt in (("training_run", run.pk, "tar"), ("study", study.pk, "zip")):
        response = client.post(
            "/api/v1/archives/bags/", {"scope": scope, "target": target, "format": fmt}
        )
        assert response.status_code == 202, response.content
        exports[scope] = response.json()["id"]
    start_worker(("default",))
    done = {
        scope: wait_for(
            lambda pk=pk: BagExport.objects.filter(pk=pk, archive__isnull=False).first(),
        )
        for scope, pk in exports.items()
    }
    assert client.get(f"/api/v1/archives/bags/{exports['study']}/").json()["job_status"] in (
        "running",
        "succeeded",
    )
    run_bag, study_bag = download(client, done["training_run"]), download(client, done["study"])

    # The run's bag: LoRA files, settings and loss log, dataset captions, provenance.
    with tarfile.open(fileobj=io.BytesIO(run_bag)) as archive:
        root = done["training_run"].bag_name
        names = set(archive.getnames())
        assert f"{root}/data/runs/run-{run.pk}/loss_log.csv" in names
        chart = archive.extractfile(f"{root}/data/runs/run-{run.pk}/loss_chart.svg").read()
        assert chart.startswith(b"<svg") and b"optimizer step" in chart  # the run page's chart
        # Under its storage name (another test of the session may have taken the plain one).
        assert f"{root}/data/files/{run.lora_diffusers.name}" in names
        metadata = archive.extractfile(f"{root}/data/datasets/silk-v1/metadata.jsonl").read()
        provenance = json.loads(archive.extractfile(f"{root}/data/provenance.json").read())
    assert b'"text"' in metadata and b"stripes" in metadata
    kinds = {e["eventType"] for e in provenance["events"]}
    assert {"ingest", "training", "generation", "export", "annotation"} <= kinds
    training = next(e for e in provenance["events"] if e["eventType"] == "training")
    assert training["eventOutcomeInformation"][0]["eventOutcome"] == "succeeded"
    assert any(a["agentName"] == "diffusers" for a in provenance["agents"])

    with zipfile.ZipFile(io.BytesIO(study_bag)) as archive:
        root = done["study"].bag_name
        ratings_csv = archive.read(f"{root}/data/study/ratings.csv").decode()
        report = json.loads(archive.read(f"{root}/data/study/report.json"))
        provenance = json.loads(archive.read(f"{root}/data/provenance.json"))
    assert "style_consistency" in ratings_csv and report
    assert {"rating", "metric calculation", "generation"} <= {
        e["eventType"] for e in provenance["events"]
    }

    for name, data in (("run.tar", run_bag), ("study.zip", study_bag)):
        upload = io.BytesIO(data)
        upload.name = name
        response = client.post("/api/v1/archives/bags/validate/", {"file": upload})
        assert response.status_code == 200, response.json()
        assert response.json()["valid"] is True

    def import_bag(name: str, data: bytes) -> dict:
        upload = io.BytesIO(data)
        upload.name = name
        response = client.post("/api/v1/archives/bags/import/", {"file": upload})
        assert response.status_code == 201, response.json()
        return response.json()

    bag_archives = {e.archive.name for e in done.values()}
    flush_everything_but(bag_archives)
    imported = import_bag("run.tar", run_bag)
    assert imported["scope"] == "training_run"
    assert catalogue_snapshot()["items"] == catalogue_before["items"]
    assert catalogue_snapshot()["annotations"] == catalogue_before["annotations"]
    assert generation_snapshot() == generation_before
    # Jobs are not carried (provenance has them): the run gets a finished job with the outcome
    # the bag records, never a queued one that would start work here.
    run_job = TrainingRun.objects.get().job
    assert run_job.kind == "archives.imported" and run_job.status == "succeeded"
    assert "imported from a bag" in run_job.message
    assert {r.status for r in GenerationRequest.objects.all()} == {"succeeded"}

    flush_everything_but(bag_archives)
    # A bag never creates accounts; the ratings need their rater's, made by an administrator.
    User.objects.create_user("rater1", is_active=False)
    import_bag("study.zip", study_bag)
    after = study_snapshot()
    assert {k: v for k, v in after.items() if k != "files"} == {
        k: v for k, v in study_before.items() if k != "files"
    }
    assert set(after["files"]) <= set(study_before["files"])
    rater = User.objects.get(username="rater1")
    assert rater.is_active is False and not rater.has_usable_password()  # as it was made


def flush_everything_but(keep: set[str]) -> None:
    """Flush, but leave the stored bag archives' bytes alone (their rows go with the rest)."""
    BagExport.objects.all().delete()
    for name in keep:
        default_storage.delete(name)
    flush_everything()
