"""Issue 16: a study declares what it compares with (references, splits, protocols per run),
keeps its rating history, says what it can detect, and warns where its tests cannot decide."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from archives.services import stored_file_save
from evaluation import distribution, power, selectors, services
from evaluation.models import MetricResult, Panel, RatingChange, StudyReference
from heritage.models import HeritageItem, ItemImage, TrainingExample
from tests.conftest import make_user
from tests.evaluation.conftest import SIZE, make_world, png_bytes, texture

DIMS = ["style_consistency", "image_text_match", "detail_richness", "artistic_beauty"]


def _panel(name: str, n: int = 2) -> tuple[Panel, list]:
    experts = [make_user(f"{name}{i}", "expert") for i in range(n)]
    panel = Panel.objects.create(name=name)
    panel.members.set(experts)
    return panel, experts


def _held_out_image(world, tag: str) -> ItemImage:
    """A painting of another item, in the run's dataset as a validation example."""
    item = HeritageItem.objects.create(
        collection=world.item.collection,
        accession_number=f"HELD-{tag}",
        title={"en": "Held-out landscape"},
    )
    arr = texture(5000 + ord(tag[0]))
    image = ItemImage.objects.create(
        item=item,
        original=stored_file_save(name=f"test/{tag}/held.png", content=png_bytes(arr)),
        width=SIZE,
        height=SIZE,
    )
    TrainingExample.objects.create(
        dataset=world.dataset, image=image, caption="[U], held out", split="validation"
    )
    return image


def test_holdout_like_study_reports_training_images_as_train(db):
    """The passage's items are training images: they are `train`, reproduction only, and the
    held-out metrics leave them out (today they silently were the references)."""
    world = make_world(tag="h")
    held = _held_out_image(world, "h")
    panel, _ = _panel("holdout")
    study = services.study_create(
        title="holdout", panel=panel, generated_images=world.images, seed=1
    )
    # Default: the held-out validation images of the run's dataset, nothing else.
    assert list(study.references.values_list("image_id", flat=True)) == [held.pk]
    training = [ex.image_id for ex in world.examples]
    services.study_references_set(study=study, image_ids=[held.pk, *training])
    services.metric_results_compute(study=study)
    report = selectors.study_report(study, n_boot=50)
    splits = {r["image_id"]: r["split"] for r in report["references"]}
    assert splits == {held.pk: "validation", **dict.fromkeys(training, "train")}
    assert all(r["accession_number"] for r in report["references"])
    for pk in training:
        assert not MetricResult.objects.filter(
            study=study, reference_id=pk, protocol="held_out"
        ).exists()
        assert MetricResult.objects.filter(
            study=study, reference_id=pk, protocol="reproduction"
        ).exists()
    held_rows = [m for m in report["metrics"] if m["protocol"] == "held_out"]
    assert held_rows == []  # every image was made for the item whose images are training ones
    repro = {m["condition"]: m for m in report["metrics"] if m["protocol"] == "reproduction"}
    assert (
        repro["lora"]["n_pairs"] == 2 * 3 and repro["lora"]["run"] == world.request.training_run_id
    )
    assert any("training images of a compared run" in w for w in report["warnings"])
    pairs = report["pairings"]
    assert {(p["reference_id"], p["protocol"]) for p in pairs} == {
        (pk, "reproduction") for pk in training
    }
    # The page flags them; CSV and JSON list every reference and the pairing.
    curator = make_user("hcur", "curator")
    c = Client()
    c.force_login(curator)
    html = c.get(f"/evaluation/studies/{study.pk}/report/").content.decode()
    assert 'class="eval-error"><th scope="row">' + str(training[0]) in html
    assert "HELD-h" in html and "reproduction" in html
    rows = list(
        csv.DictReader(
            io.StringIO(c.get(f"/evaluation/studies/{study.pk}/report.csv").content.decode())
        )
    )
    refs = [r for r in rows if r["section"] == "reference"]
    assert {r["dimension"] for r in refs} == {"train", "validation"} and len(refs) == 4
    assert len([r for r in rows if r["section"] == "pairing"]) == len(pairs)
    body = c.get(f"/evaluation/studies/{study.pk}/report.json").json()
    assert {r["split"] for r in body["references"]} <= {"validation", "train", "none"}


def test_held_out_pairs_and_distribution_per_run(db):
    """Images made for a held-out item are paired with it; two LoRAs are never pooled."""
    a, b = make_world(tag="p"), make_world(tag="q", prompt="a pavilion by water")
    held_a, held_b = _held_out_image(a, "p"), _held_out_image(b, "q")
    for world, held in ((a, held_a), (b, held_b)):
        for g in world.images:  # made from the held-out image's caption, for its item
            g.item = held.item
            g.passage = None
            g.save(update_fields=["item", "passage"])
        world.request.passage = None
        world.request.save(update_fields=["passage"])
    panel, _ = _panel("perrun")
    study = services.study_create(
        title="two LoRAs", panel=panel, generated_images=a.images + b.images, seed=2
    )
    run_a, run_b = a.request.training_run_id, b.request.training_run_id
    conditions = set(study.items.values_list("condition", flat=True))
    assert conditions == {"base", f"lora:{run_a}", f"lora:{run_b}"}
    assert set(study.references.values_list("image_id", flat=True)) == {held_a.pk, held_b.pk}
    services.metric_results_compute(study=study)
    study.metric_distribution = services.distribution_rows(study)
    study.save()
    report = selectors.study_report(study, n_boot=50)
    held = [(m["run"], m["condition"], m["n_pairs"]) for m in report["metrics"]]
    assert sorted(held, key=str) == sorted(
        [
            (run_a, "base", 2),
            (run_a, f"lora:{run_a}", 2),
            (run_b, "base", 2),
            (run_b, f"lora:{run_b}", 2),
        ],
        key=str,
    )
    assert {m["protocol"] for m in report["metrics"]} == {"held_out"}
    dist = {(d["run"], d["condition"]): d for d in report["distribution"]}
    assert set(dist) == {
        (run_a, "base"),
        (run_a, f"lora:{run_a}"),
        (run_b, "base"),
        (run_b, f"lora:{run_b}"),
    }
    row = dist[(run_a, f"lora:{run_a}")]
    assert row["n_references"] == 2 and row["swd_x1e3"] > 0 and row["colour_emd"] >= 0
    assert row["features"]["status"] == "not configured"
    assert [p["name"] for p in report["protocols"]] == ["reproduction", "held_out", "distribution"]


def test_references_set_refuses_unknown_ids_and_changes_nothing(db):
    world = make_world(tag="r")
    held = _held_out_image(world, "r")
    panel, _ = _panel("refs")
    study = services.study_create(title="r", panel=panel, generated_images=world.images, seed=3)
    with pytest.raises(ValidationError, match="no catalogue image"):
        services.study_references_set(study=study, image_ids=[held.pk, 999999])
    assert list(study.references.values_list("image_id", flat=True)) == [held.pk]
    curator = make_user("rcur", "curator")
    c = Client()
    c.force_login(curator)
    url = f"/api/v1/evaluation/studies/{study.pk}/references/"
    bad = c.put(url, {"image_ids": [999999]}, content_type="application/json")
    assert bad.status_code == 400 and "999999" in str(bad.json())
    ok = c.put(url, {"image_ids": [world.reference.pk]}, content_type="application/json")
    assert ok.status_code == 200
    assert [(r["image_id"], r["split"]) for r in ok.json()["references"]] == [
        (world.reference.pk, "none")
    ]
    assert StudyReference.objects.filter(study=study).count() == 1
    # The page form too: a bad id changes nothing and says why.
    page = c.post(
        f"/evaluation/studies/{study.pk}/references/", {"reference_ids": "12x"}, follow=True
    )
    assert "References unchanged" in page.content.decode()
    assert StudyReference.objects.filter(study=study).count() == 1


def test_rating_history_audit_and_form_notice(db):
    world = make_world(tag="x")
    panel, (expert, _other) = _panel("hist")
    study = services.study_create(title="x", panel=panel, generated_images=world.images, seed=4)
    item = study.items.first()
    services.rating_submit(expert=expert, item=item, scores={"style_consistency": 2})
    services.rating_submit(expert=expert, item=item, scores={"style_consistency": 2})  # same
    services.rating_submit(expert=expert, item=item, scores={"style_consistency": 4})
    changes = list(RatingChange.objects.filter(item=item, expert=expert))
    assert [(c.old_score, c.new_score) for c in changes] == [(None, 2), (2, 4)]
    report = selectors.study_report(study, n_boot=50)
    assert [(a["username"], a["old_score"], a["new_score"]) for a in report["audit"]] == [
        (expert.username, 2, 4)
    ]
    c = Client()
    c.force_login(expert)
    position = item.assignments.get(expert=expert).position
    form = c.get(f"/evaluation/studies/{study.pk}/rate/{position}/").content.decode()
    assert "You saved 4" in form and "changes your saved score" in form
    assert "Changed 1 time" in form


def test_report_warnings_one_expert_few_pairs_and_holm_on_spearman(db):
    world = make_world(tag="w", n_seeds=3)
    held = _held_out_image(world, "w")
    panel, (expert,) = _panel("solo", 1)
    study = services.study_create(
        title="solo", panel=panel, generated_images=world.images, reference_images=[held], seed=5
    )
    services.study_references_set(study=study, image_ids=[held.pk, world.reference.pk])
    for n, item in enumerate(study.items.order_by("pk")):
        services.rating_submit(expert=expert, item=item, scores={d: 1 + (n % 5) for d in DIMS})
    services.metric_results_compute(study=study)
    report = selectors.study_report(study, n_boot=50)
    assert report["study"]["experts_label"] == "1 expert"
    assert any(w.startswith("1 expert") for w in report["warnings"])
    assert any("Too few pairs" in w for w in report["warnings"])
    cmp = report["comparisons"][0]
    assert cmp["n_pairs"] == 1 and cmp["min_p"] == 1.0 and "cannot reach 0.05" in cmp["warning"]
    tested = [c for c in report["correlations"] if c["p"] is not None]
    assert tested and all(c["p_holm"] >= c["p"] for c in tested)
    # The calibration image is a real painting: style 1 fails its known answer.
    assert report["attention_checks"][0]["flagged"] in (True, False)
    curator = make_user("scur", "curator")
    c = Client()
    c.force_login(curator)
    html = c.get(f"/evaluation/studies/{study.pk}/report/").content.decode()
    assert "1 expert ·" in html and "1 experts" not in html and "p (Holm)" in html


def test_attention_checks_flag_a_careless_rater(db):
    world = make_world(tag="c")
    panel, (careful, careless) = _panel("attn")
    study = services.study_create(
        title="c",
        panel=panel,
        generated_images=world.images,
        reference_images=[world.reference],
        seed=6,
    )
    calib = study.items.get(kind="reference")
    assert calib.expected == {"style_consistency": [4, 5]}
    services.rating_submit(expert=careful, item=calib, scores={"style_consistency": 5})
    services.rating_submit(expert=careless, item=calib, scores={"style_consistency": 1})
    report = selectors.study_report(study, n_boot=50)
    flags = {a["username"]: a["flagged"] for a in report["attention_checks"]}
    assert flags == {careful.username: False, careless.username: True}
    assert any(careless.username in w and "attention" in w for w in report["warnings"])


def test_close_asks_for_confirmation(db):
    world = make_world(tag="k")
    panel, _ = _panel("close")
    study = services.study_create(title="k", panel=panel, generated_images=world.images, seed=7)
    c = Client()
    c.force_login(make_user("kcur", "curator"))
    first = c.post(f"/evaluation/studies/{study.pk}/close/")
    assert first.status_code == 200 and "Yes, close the study" in first.content.decode()
    study.refresh_from_db()
    assert study.is_open
    assert c.post(f"/evaluation/studies/{study.pk}/close/", {"confirm": "yes"}).status_code == 302
    study.refresh_from_db()
    assert not study.is_open


def test_power_plan_and_what_a_study_detects(db):
    # SD 0.7 (the seeds' upper value), 4 experts, 0.5 points, power 0.8: per-prompt difference
    # SD 0.7 * sqrt(2/4) = 0.495, d = 1.01: paired t needs 10 prompts, Wilcoxon 10 / 0.955.
    assert power.pairs_needed(0.5, 0.7, 4) == 11
    assert power.pairs_needed(0.5, 0.3, 4) == 6  # the exact test's floor at alpha 0.05
    assert power.pairs_needed(0.5, 0.7, 1) > power.pairs_needed(0.5, 0.7, 4)
    assert power.min_attainable_p(3) == 0.25 and power.min_pairs_for_alpha(0.05) == 6
    assert power.detectable_difference(3, 0.7, 1) is None
    assert 0.4 < power.detectable_difference(11, 0.7, 4) < 0.55
    world = make_world(tag="n")
    panel, _ = _panel("plan", 4)
    study = services.study_create(title="n", panel=panel, generated_images=world.images, seed=8)
    c = Client()
    c.force_login(make_user("ncur", "curator"))
    html = c.get(f"/evaluation/studies/{study.pk}/report/?difference=0.5").content.decode()
    assert "Planning: what this study can detect" in html
    assert "001_465742bc70709bdb" in html and "nothing (too few prompts)" in html
    assert c.get(f"/evaluation/studies/{study.pk}/report/?difference=x").status_code == 200


def test_distribution_measures_order_sets_sensibly():
    rng = np.random.default_rng(0)
    textured = [texture(i, 64) for i in range(4)]
    similar = [texture(i + 10, 64) for i in range(4)]
    flat = [np.full((64, 64, 3), 128, np.uint8) for _ in range(4)]
    near = distribution.swd(textured, similar)["mean"]
    far = distribution.swd(textured, flat)["mean"]
    assert near < far
    assert distribution.colour_histogram_distance(textured, textured) == 0
    assert distribution.colour_histogram_distance(textured, flat) > 10
    noise = [rng.integers(0, 256, (64, 64, 3)).astype(np.uint8) for _ in range(2)]
    assert set(distribution.swd(noise, noise)["levels"]) == {"64px", "32px", "16px"}
    with pytest.raises(ValueError, match="differ in size"):
        distribution.swd(textured, [np.zeros((32, 32, 3), np.uint8)])
    slot = distribution.feature_slot("/nonexistent/weights.safetensors", textured, flat)
    assert slot.status == "weights missing"


def test_new_study_page_says_how_big_a_study_must_be(db):
    c = Client()
    c.force_login(make_user("pcur", "curator"))
    html = c.get("/evaluation/studies/new/").content.decode()
    assert "How big a study must be" in html and "001_465742bc70709bdb" in html
    # SD 0.7, 4 experts, 0.5 points, power 0.8: 11 prompts, 22 images.
    assert '<th scope="row">4</th><td>0.7</td><td>11</td><td>22</td>' in html


def test_admin_shows_history_but_never_edits_a_rating_around_it(db):
    from django.contrib.auth.models import User

    world = make_world(tag="a")
    panel, (expert, _) = _panel("adm")
    study = services.study_create(title="a", panel=panel, generated_images=world.images, seed=9)
    item = study.items.first()
    services.rating_submit(expert=expert, item=item, scores={"style_consistency": 3})
    rating = item.ratings.get()
    admin = User.objects.create_superuser("root16", "r@example.org", "pw-unused-16")
    c = Client()
    c.force_login(admin)
    page = c.get(f"/admin/evaluation/rating/{rating.pk}/change/").content.decode()
    assert 'name="score"' not in page  # read-only: a change here would skip the history
    assert c.get("/admin/evaluation/ratingchange/").status_code == 200
    assert c.get(f"/admin/evaluation/study/{study.pk}/change/").status_code == 200
