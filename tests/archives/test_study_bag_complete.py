"""Issue 16: a study bag carries every record its provenance graph reaches (runs, datasets,
every example and crop, base model, ratings and their history, metrics, references), and
validation fails on a bag that does not (today's bag held 4 of 8 training examples)."""

from __future__ import annotations

import json
import tarfile
from dataclasses import replace

from archives import bag_registry
from archives.bagit_export import bag_export_file
from archives.bagit_validate import bag_validate
from evaluation import services as evaluation_services
from evaluation.models import MemorisationCheck
from generation.models import GeneratedImage
from heritage.bag import DATASET_EXAMPLES
from tests.archives.test_bag_run_study import build_run_and_study


def _members(path) -> dict:
    with tarfile.open(path) as archive:
        name = next(n for n in archive.getnames() if n.endswith("/data/atelier.json"))
        return json.loads(archive.extractfile(name).read())


def test_study_bag_is_complete_and_validates(db, tmp_path):
    run, study = build_run_and_study()
    dataset = run.dataset
    image = dataset.examples.order_by("pk").first().image
    evaluation_services.study_references_set(study=study, image_ids=[image.pk])
    item = study.items.first()
    expert = item.assignments.first().expert
    evaluation_services.rating_submit(expert=expert, item=item, scores={"style_consistency": 2})
    target = tmp_path / "study.tar"
    bag_export_file(scope="study", target_id=study.pk, archive_format="tar", target=target)
    report = bag_validate(target)
    assert report.valid, report.problems
    document = _members(target)
    labels = [r["model"] for r in document["records"]]
    assert labels.count("heritage.trainingexample") == dataset.examples.count() == 4
    assert "generation.basemodel" in labels and "generation.trainingrun" in labels
    assert "evaluation.studyreference" in labels and "evaluation.ratingchange" in labels
    crops = {r["fields"]["crop"] for r in document["records"] if r["model"].endswith("example")}
    assert crops <= set(document["files"])


def test_todays_partial_study_bag_fails_validation(db, tmp_path):
    """The bag as gathered before: examples only where the memorisation check pointed."""
    run, study = build_run_and_study()
    examples = list(run.dataset.examples.order_by("pk"))
    for generated, example in zip(
        GeneratedImage.objects.order_by("pk"), examples[:2], strict=False
    ):
        MemorisationCheck.objects.create(
            generated=generated,
            dataset=run.dataset,
            nearest=example,
            similarity=0.5,
            ssim_threshold=0.8,
            hash_threshold=4,
            n_compared=4,
        )
    scope = bag_registry.bag_scope("study")
    old = replace(
        scope,
        relations=tuple(
            r
            for r in scope.relations
            if r != DATASET_EXAMPLES and r.child not in ("evaluation.studyreference",)
        ),
    )
    bag_registry.register_scope(old)
    try:
        target = tmp_path / "old.tar"
        bag_export_file(scope="study", target_id=study.pk, archive_format="tar", target=target)
    finally:
        bag_registry.register_scope(scope)
    document = _members(target)
    held = [r for r in document["records"] if r["model"] == "heritage.trainingexample"]
    assert len(held) == 2  # 2 of 4, as the 4 of 8
    report = bag_validate(target)
    assert not report.valid
    text = " ".join(report.problems)
    assert "the bag holds 2 of its examples" in text and "content hash" in text
    assert "holds 2 of 4 heritage.trainingexample records" in text
    # The same without the closure list (a bag written before it existed) still fails.
    patched = tmp_path / "no-closure"
    with tarfile.open(target) as archive:
        archive.extractall(patched, filter="data")
    (root,) = list(patched.iterdir())
    (root / "data" / "study" / "closure.json").unlink()
    from archives.bagit_validate import graph_problems

    problems = graph_problems(root / "data")
    assert any("content hash" in p for p in problems)
    assert any("closure.json is missing" in p for p in problems)
