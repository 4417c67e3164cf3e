"""Reports (page, API, CSV/JSON), automated metrics and the memorisation check."""

from __future__ import annotations

import csv
import io
import math

import numpy as np
import pytest
from django.test import Client
from PIL import Image
from skimage.metrics import mean_squared_error, structural_similarity

from archives.services import stored_file_read
from evaluation import selectors, services
from evaluation.models import MemorisationCheck, MetricResult, Panel
from tests.conftest import make_user
from tests.evaluation.conftest import make_world

DIMS = ["style_consistency", "image_text_match", "detail_richness", "artistic_beauty"]


def rgb(stored):
    with Image.open(io.BytesIO(stored_file_read(stored))) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture
def rated(db):
    """Two experts; base images get 2 from expert A and 3 from B; LoRA images 4 and 5."""
    world = make_world()
    experts = [make_user("ra", "expert"), make_user("rb", "expert")]
    panel = Panel.objects.create(name="report panel")
    panel.members.set(experts)
    study = services.study_create(
        title="Base vs LoRA",
        panel=panel,
        generated_images=world.images,
        reference_images=[world.reference],
        seed=3,
    )
    for item in study.items.all():
        for expert, (base, lora, ref) in zip(experts, [(2, 4, 5), (3, 5, 5)], strict=True):
            score = {"base": base, "lora": lora, "reference": ref}[item.condition]
            services.rating_submit(expert=expert, item=item, scores={d: score for d in DIMS})
    return world, study, experts


def test_table2_values_by_hand(rated):
    _world, study, _ = rated
    report = selectors.study_report(study, sd_over="ratings", n_boot=2000)
    assert report["conditions"] == ["base", "lora", "reference"]
    style = next(r for r in report["table"] if r["dimension"] == "style_consistency")
    # base: ratings 2, 2 (expert A, two images) and 3, 3 (B): mean 2.5,
    # SD = sqrt(4 * 0.25 / 3) = 0.5774
    base = style["conditions"]["base"]
    assert (base["n"], base["mean"]) == (4, 2.5)
    assert base["sd"] == pytest.approx(math.sqrt(1 / 3))
    assert style["conditions"]["lora"]["mean"] == 4.5
    comp = next(r for r in report["table"] if r["dimension"] == "comprehensive")
    assert comp["conditions"]["base"]["mean"] == 2.5
    by_rater = selectors.study_report(study, sd_over="rater_means", n_boot=2000)
    style = next(r for r in by_rater["table"] if r["dimension"] == "style_consistency")
    # rater means 2 and 3: SD = sqrt(0.5) = 0.7071, n = 2 experts
    assert style["conditions"]["base"]["sd"] == pytest.approx(math.sqrt(0.5))
    assert style["conditions"]["base"]["n"] == 2
    assert "experts' means" in by_rater["sd_note"]
    # one prompt -> one pair; difference 4.5 - 2.5 = 2; Holm over 5 tests
    cmp = next(c for c in report["comparisons"] if c["dimension"] == "style_consistency")
    assert (cmp["condition"], cmp["reference"], cmp["n_pairs"]) == ("lora", "base", 1)
    assert cmp["mean_difference"] == 2.0 and (cmp["ci_low"], cmp["ci_high"]) == (2.0, 2.0)
    assert len(report["agreement"]) == 4
    assert report["agreement"][0]["icc_targets"] == 5  # both experts rated all five images


def test_report_page_api_and_exports(rated):
    _, study, _experts = rated
    curator = make_user("cur", "curator")
    c = Client()
    c.force_login(curator)
    page = c.get(f"/evaluation/studies/{study.pk}/report/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html and "Mean score per dimension" in html  # the chart, inline, no CDN
    assert "2.50 ± 0.58" in html and "Krippendorff" in html and "Holm" in html
    assert not any(f'{attr}="http' in html for attr in ("src", "href"))  # nothing external
    api = c.get(f"/api/v1/evaluation/studies/{study.pk}/report/?sd_over=rater_means")
    assert api.status_code == 200 and api.json()["sd_over"] == "rater_means"
    assert c.get(f"/api/v1/evaluation/studies/{study.pk}/report/?sd_over=x").status_code == 400
    exported = c.get(f"/evaluation/studies/{study.pk}/report.csv")
    assert exported["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert {r["section"] for r in rows} >= {"table", "agreement", "comparison", "spearman"}
    as_json = c.get(f"/evaluation/studies/{study.pk}/report.json").json()
    assert as_json["study"]["ratings"] == 2 * 5 * 4
    # close from the page, after confirming
    assert c.post(f"/evaluation/studies/{study.pk}/close/").status_code == 200
    assert c.post(f"/evaluation/studies/{study.pk}/close/", {"confirm": "yes"}).status_code == 302
    study.refresh_from_db()
    assert study.status == "closed"


def test_metrics_match_skimage_and_feed_the_report(rated):
    world, study, _ = rated
    # Declared references: the item's reference image (in no dataset: held-out) and its three
    # training images (reproduction only).
    training = [ex.image_id for ex in world.examples]
    services.study_references_set(study=study, image_ids=[world.reference.pk, *training])
    results = services.metric_results_compute(study=study)
    # 4 generated images x the 4 declared images of their heritage item
    assert len(results) == 16
    row = MetricResult.objects.get(
        study=study, generated=world.images[0], reference=world.reference
    )
    assert row.protocol == "held_out" and row.run_id == world.request.training_run_id
    a, b = rgb(world.images[0].file), rgb(world.reference.original)
    assert row.mse == pytest.approx(mean_squared_error(a, b))
    assert row.ssim == pytest.approx(
        structural_similarity(a, b, channel_axis=-1, data_range=255), abs=1e-6
    )
    assert row.psnr == pytest.approx(10 * math.log10(255**2 / row.mse))
    services.metric_results_compute(study=study)  # idempotent: rerun updates, no duplicates
    assert MetricResult.objects.filter(study=study).count() == 16
    report = selectors.study_report(study, n_boot=500)
    assert [(m["protocol"], m["condition"]) for m in report["metrics"]] == [
        ("reproduction", "base"),
        ("reproduction", "lora"),
        ("held_out", "base"),
        ("held_out", "lora"),
    ]
    assert [m["n_pairs"] for m in report["metrics"]] == [6, 6, 2, 2]
    ssim_corr = [c for c in report["correlations"] if c["metric"] == "ssim"]
    assert len(ssim_corr) == 5 and all(c["n"] == 4 for c in ssim_corr)


def test_memorisation_flags_near_copies(db):
    world = make_world(tag="m", near_copy_seed=1)
    ids = [g.pk for g in world.images]
    assert all(not f["checked"] for f in selectors.near_copy_flags(ids).values())
    checks = services.memorisation_check_images(generated_image_ids=ids)
    copy = next(g for g in world.images if g.condition == "lora" and g.seed == 1)
    assert checks[copy.pk].near_copy
    assert checks[copy.pk].nearest == world.examples[1]
    assert checks[copy.pk].similarity == pytest.approx(1.0)
    assert checks[copy.pk].hash_distance == 0
    flags = selectors.near_copy_flags(ids)
    assert [pk for pk, f in flags.items() if f["near_copy"]] == [copy.pk]
    assert flags[copy.pk]["nearest_item_image_id"] == world.examples[1].image_id
    assert all(f["checked"] and f["n_compared"] == 3 for f in flags.values())
    curator = make_user("cur2", "curator")
    c = Client()
    c.force_login(curator)
    api = c.get(f"/api/v1/evaluation/near-copies/?ids={','.join(map(str, ids))}").json()
    assert api[str(copy.pk)]["near_copy"] is True
    assert MemorisationCheck.objects.count() == 4
