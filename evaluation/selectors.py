"""Reads of the evaluation app: what an expert may see, and the curators' report."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from html import escape
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from core.errors import Refused
from evaluation import metrics, power, stats
from evaluation.models import (
    Assignment,
    Dimension,
    MemorisationCheck,
    MetricResult,
    Rating,
    RatingChange,
    Study,
    StudyItem,
)
from heritage.selectors import user_is_curator

__all__ = ["images_in_open_studies", "near_copy_flags", "user_is_curator"]

REFERENCE_CONDITION = "reference"


# --- what experts see ---------------------------------------------------------------------


def studies_for_expert(user) -> QuerySet[Study]:
    if not getattr(user, "is_authenticated", False):
        return Study.objects.none()
    return (
        Study.objects.filter(assignments__expert=user)
        .annotate(n_assigned=Count("assignments", filter=Q(assignments__expert=user)))
        .distinct()
        .order_by("-created_at")
    )


def study_for_expert(user, pk: int) -> Study:
    """The study if the user is assigned to it; 404 otherwise (existence is not revealed),
    also for an id that is not a whole number (the API's router accepts any path segment)."""
    if not str(pk).isdigit():
        raise Http404("no such study")
    study = studies_for_expert(user).filter(pk=pk).first()
    if study is None:
        raise Http404("no such study")
    return study


def expert_assignments(study: Study, expert) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(study=study, expert=expert)
        .select_related("item__passage")
        .order_by("position")
    )


def expert_ratings(study: Study, expert) -> dict[int, dict[str, Rating]]:
    """The expert's OWN ratings by item id and dimension (never anybody else's)."""
    out: dict[int, dict[str, Rating]] = defaultdict(dict)
    for r in Rating.objects.filter(study=study, expert=expert):
        out[r.item_id][r.dimension] = r
    return out


def rating_change_counts(item: StudyItem, expert) -> dict[str, int]:
    """How many times the expert changed each saved score of this item."""
    return dict(
        RatingChange.objects.filter(item=item, expert=expert, old_score__isnull=False)
        .values_list("dimension")
        .annotate(n=Count("id"))
    )


def expert_progress(study: Study, expert) -> tuple[int, int]:
    """(items with all four dimensions rated, items assigned)."""
    total = Assignment.objects.filter(study=study, expert=expert).count()
    done = (
        Rating.objects.filter(study=study, expert=expert)
        .values("item")
        .annotate(n=Count("id"))
        .filter(n=len(Dimension.values))
        .count()
    )
    return done, total


def item_for_token(user, token: str) -> StudyItem:
    """The item behind an opaque image token, for its assigned experts or a curator."""
    item = StudyItem.objects.select_related("blind", "study").filter(token=token).first()
    if item is None:
        raise Http404("no such image")
    if user_is_curator(user) or Assignment.objects.filter(item=item, expert=user).exists():
        return item
    raise Http404("no such image")


# --- the memorisation check, for the generation app --------------------------------------


def near_copy_flags(generated_image_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """For each id: ``checked`` (False: not checked yet — run
    ``evaluation.services.memorisation_check_images``), ``near_copy``, ``similarity`` (grey
    64 px SSIM with the nearest training image), ``hash_distance``, ``nearest_example_id``,
    ``nearest_item_image_id``, ``dataset_id``, ``n_compared``."""
    ids = list(generated_image_ids)
    out: dict[int, dict[str, Any]] = {
        pk: {"checked": False, "near_copy": None, "similarity": None} for pk in ids
    }
    for c in MemorisationCheck.objects.filter(generated_id__in=ids).select_related("nearest"):
        out[c.generated_id] = {
            "checked": True,
            "near_copy": c.near_copy,
            "similarity": c.similarity,
            "hash_distance": c.hash_distance,
            "nearest_example_id": c.nearest_id,
            "nearest_item_image_id": c.nearest.image_id if c.nearest_id else None,
            "dataset_id": c.dataset_id,
            "n_compared": c.n_compared,
            "ssim_threshold": c.ssim_threshold,
            "hash_threshold": c.hash_threshold,
            "checked_at": c.checked_at.isoformat(),
        }
    return out


def images_in_open_studies(generated_image_ids: Iterable[int]) -> set[int]:
    """Ids among these that an open study is still rating blind (approving one would make it
    public with its condition, so the generation app should wait until the study closes)."""
    return set(
        StudyItem.objects.filter(
            generated_id__in=list(generated_image_ids), study__status=Study.Status.OPEN
        ).values_list("generated_id", flat=True)
    )


# --- the report ---------------------------------------------------------------------------


def rating_rows(study: Study) -> list[stats.RatingRow]:
    return [
        stats.RatingRow(
            rater=r["expert_id"],
            item=r["item_id"],
            condition=r["item__condition"],
            group=r["item__group"],
            dimension=r["dimension"],
            score=float(r["score"]),
        )
        for r in Rating.objects.filter(study=study).values(
            "expert_id", "item_id", "item__condition", "item__group", "dimension", "score"
        )
    ]


def study_conditions(study: Study) -> list[str]:
    present = set(study.items.values_list("condition", flat=True))
    ordered = [study.reference_condition] if study.reference_condition in present else []
    ordered += sorted(present - {study.reference_condition, REFERENCE_CONDITION})
    if REFERENCE_CONDITION in present:
        ordered.append(REFERENCE_CONDITION)
    return ordered


SD_NOTES = {
    "ratings": "SD over individual ratings (ddof 1); for the comprehensive score, over each "
    "expert's per-image mean of the four dimensions.",
    "rater_means": "SD (ddof 1) over the experts' means: each expert's mean per condition and "
    "dimension first; n is the number of experts.",
}
AGREEMENT_NOTE = (
    "Krippendorff's alpha, ordinal metric, over all rated images (calibration images included), "
    "missing ratings allowed. ICC(2,1) and ICC(2,k): Shrout & Fleiss two-way random effects, "
    "absolute agreement, single expert and mean of k experts, over images rated by every expert."
)


def comparison_note(pair_by: str, n_boot: int, seed: int) -> str:
    unit = "prompt (mean over experts and images)" if pair_by == "group" else "expert x prompt"
    return (
        f"Paired by {unit}. Two-sided Wilcoxon signed-rank (scipy, zero differences dropped); "
        f"p adjusted by Holm over every test in this table. 95 % CI: percentile bootstrap of "
        f"the mean difference, {n_boot} resamples, seed {seed}."
    )


PROTOCOLS = {
    "reproduction": (
        "Reproduction: images generated for a training image's own item, compared with that "
        "training image (000_799139077b62291c's protocol). It measures how closely a LoRA "
        "redraws what it was trained on, not how it generalises."
    ),
    "held_out": (
        "Held-out: images generated for a declared reference outside every compared run's "
        "training split (or, when made for none of them, against every such reference)."
    ),
    "distribution": (
        "Distribution: each run's generated set against the held-out references as a set, "
        "needing no pretrained network: multi-scale sliced Wasserstein distance over 7x7 "
        "patches of a Laplacian pyramid (x 1e3; Karras et al. 2018, progressive GAN) and the "
        "colour histogram earth mover's distance (grey levels, mean of R, G, B). Smaller is "
        "closer. KID / CLIP score run only with feature-extractor weights on disk."
    ),
}


def run_label(run_id: int | None) -> str:
    return f"run {run_id}" if run_id else "no run"


def metric_summary(
    study: Study,
) -> tuple[list[dict[str, Any]], dict[int, dict[str, float]]]:
    """Per protocol, run and condition (000_799139077b62291c's table, never pooled across
    runs) and per generated image (mean over its held-out references)."""
    rows = list(MetricResult.objects.filter(study=study))
    by_key: dict[tuple[str, int | None, str], list[metrics.PairMetrics]] = defaultdict(list)
    per_image: dict[int, list[MetricResult]] = defaultdict(list)
    for r in rows:
        by_key[(r.protocol, r.run_id, r.condition)].append(
            metrics.PairMetrics(mse=r.mse, psnr=r.psnr, ssim=r.ssim, identical=r.identical)
        )
        if r.protocol == MetricResult.Protocol.HELD_OUT:
            per_image[r.generated_id].append(r)
    order = {c: i for i, c in enumerate(study_conditions(study))}
    table = []
    for protocol, run_id, condition in sorted(
        by_key, key=lambda k: (list(PROTOCOLS).index(k[0]), k[1] or 0, order.get(k[2], 99), k[2])
    ):
        summary = metrics.summarise(by_key[(protocol, run_id, condition)])
        table.append(
            {
                "protocol": protocol,
                "run": run_id,
                "condition": condition,
                "label": f"{condition} ({run_label(run_id)})",
                **summary.__dict__,
            }
        )
    image_means = {}
    for pk, rs in per_image.items():
        psnrs = [r.psnr for r in rs if r.psnr is not None]
        image_means[pk] = {
            "mse": sum(r.mse for r in rs) / len(rs),
            "psnr": sum(psnrs) / len(psnrs) if psnrs else None,
            "ssim": sum(r.ssim for r in rs) / len(rs),
        }
    return table, image_means


def study_references(study: Study) -> list[dict[str, Any]]:
    """Every declared reference: image id, accession number, split and what uses it."""
    from evaluation.services import SPLIT_TRAIN, reference_splits

    refs = list(study.references.select_related("image__item"))
    splits = reference_splits(study, [r.image_id for r in refs])
    out = []
    for r in refs:
        split = splits[r.image_id]["split"]
        out.append(
            {
                "image_id": r.image_id,
                "item_id": r.image.item_id,
                "accession_number": r.image.item.accession_number,
                "split": split,
                "datasets": splits[r.image_id]["datasets"],
                "used_for": ["reproduction"]
                if split == SPLIT_TRAIN
                else ["held_out", "distribution"],
                "flag": (
                    "training image of a compared run: reproduction only, left out of the "
                    "held-out and distribution metrics"
                    if split == SPLIT_TRAIN
                    else ""
                ),
            }
        )
    return out


def study_pairings(study: Study) -> list[dict[str, Any]]:
    """Which generated image is (or will be) compared with which reference, by protocol."""
    from evaluation.services import study_pairings as pairings

    return [
        {
            "generated_id": p["generated"].pk,
            "condition": p["condition"],
            "run": p["run_id"],
            "reference_id": p["reference"].pk,
            "split": p["split"],
            "protocol": p["protocol"],
            "linked": p["linked"],
        }
        for p in pairings(study)
    ]


def attention_checks(study: Study) -> list[dict[str, Any]]:
    """Per expert: calibration items with a known answer they rated, and how many they failed
    (a score outside the expected range). Flagged when they failed more than half of them."""
    items = {
        i.pk: i.expected for i in study.items.filter(kind=StudyItem.Kind.REFERENCE) if i.expected
    }
    per_expert: dict[int, dict[str, Any]] = {}
    for r in Rating.objects.filter(study=study, item_id__in=list(items)).select_related("expert"):
        bounds = items[r.item_id].get(r.dimension)
        if not bounds:
            continue
        entry = per_expert.setdefault(
            r.expert_id,
            {"expert": r.expert_id, "username": r.expert.get_username(), "checks": 0, "failed": []},
        )
        entry["checks"] += 1
        lo, hi = bounds
        if not lo <= r.score <= hi:
            entry["failed"].append(
                {
                    "item": r.item_id,
                    "dimension": r.dimension,
                    "score": r.score,
                    "expected": [lo, hi],
                }
            )
    out = []
    for entry in sorted(per_expert.values(), key=lambda e: e["expert"]):
        entry["flagged"] = len(entry["failed"]) * 2 > entry["checks"]
        out.append(entry)
    return out


def rating_audit(study: Study) -> list[dict[str, Any]]:
    """Changes of saved scores (old -> new), oldest first; first scores are not listed."""
    return [
        {
            "expert": c.expert_id,
            "username": c.expert.get_username(),
            "item": c.item_id,
            "dimension": c.dimension,
            "old_score": c.old_score,
            "new_score": c.new_score,
            "old_comment": c.old_comment,
            "new_comment": c.new_comment,
            "changed_at": c.changed_at.isoformat(),
        }
        for c in RatingChange.objects.filter(study=study, old_score__isnull=False).select_related(
            "expert"
        )
    ]


def study_completion(study: Study) -> dict[str, Any]:
    """What closing would freeze: assignments, fully rated ones, experts with items left."""
    total = study.assignments.count()
    needed = len(Dimension.values)
    rated = (
        Rating.objects.filter(study=study)
        .values("item", "expert")
        .annotate(n=Count("id"))
        .filter(n=needed)
        .count()
    )
    pending = sorted(
        {
            a.expert.get_username()
            for a in study.assignments.select_related("expert")
            if Rating.objects.filter(item=a.item_id, expert=a.expert_id).count() < needed
        }
    )
    return {"assigned": total, "rated": rated, "pending_experts": pending}


def pilot_sd(rows: list[stats.RatingRow], conditions: Iterable[str]) -> float | None:
    """The pooled within-condition SD of this study's ratings (None below 2 per condition)."""
    import numpy as np

    by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        if r.condition in conditions:
            by[(r.condition, r.dimension)].append(r.score)
    num, df = 0.0, 0
    for scores in by.values():
        if len(scores) >= 2:
            num += float(np.var(scores, ddof=1)) * (len(scores) - 1)
            df += len(scores) - 1
    return (num / df) ** 0.5 if df else None


def planning_table(
    *, difference: float = 0.5, target_power: float = 0.8, alpha: float = 0.05
) -> dict[str, Any]:
    """Before a study exists: prompts and images per panel size, from the seeds' SDs."""
    rows = power.plan(difference=difference, power=target_power, alpha=alpha)
    return {
        "difference": difference,
        "power": target_power,
        "alpha": alpha,
        "sds": list(power.SEED_SDS),
        "sd_source": "001_465742bc70709bdb (SDs 0.3-0.7, 4 raters)",
        "plan": [r.as_dict() for r in rows],
        "min_pairs": power.min_pairs_for_alpha(alpha),
    }


def study_power(
    study: Study,
    rows: list[stats.RatingRow] | None = None,
    *,
    difference: float = 0.5,
    target_power: float = 0.8,
    alpha: float = 0.05,
    sd: float | None = None,
) -> dict[str, Any]:
    """What the study needs (prompts and images per panel size) to detect ``difference`` with
    ``target_power``, and what it could detect with its prompts and experts now. The SD is
    the given one, else this study's ratings (a pilot) when there are any, else the seeds'
    range (0.3-0.7)."""
    rows = rating_rows(study) if rows is None else rows
    conditions = [c for c in study_conditions(study) if c != REFERENCE_CONDITION]
    if sd is not None:
        sds, source = (sd,), "given"
    elif (pilot := pilot_sd(rows, conditions)) and pilot > 0:
        sds, source = (round(pilot, 3),), f"this study's {len(rows)} ratings (pilot)"
    else:
        sds, source = power.SEED_SDS, "001_465742bc70709bdb (SDs 0.3-0.7, 4 raters)"
    generated = study.items.filter(kind=StudyItem.Kind.GENERATED)
    prompts = generated.values("group").distinct().count()
    per_prompt = max(1, round(generated.count() / max(prompts, 1) / max(len(conditions), 1)))
    experts = study.panel.members.count()
    plan = power.plan(
        difference=difference,
        sds=sds,
        power=target_power,
        alpha=alpha,
        images_per_prompt=per_prompt,
        conditions=max(len(conditions), 2),
    )
    detectable = [
        {
            "sd": s,
            "difference": power.detectable_difference(
                prompts, s, max(experts, 1), target_power, alpha
            ),
        }
        for s in sds
    ]
    return {
        "difference": difference,
        "power": target_power,
        "alpha": alpha,
        "sds": list(sds),
        "sd_source": source,
        "prompts": prompts,
        "experts": experts,
        "plan": [r.as_dict() for r in plan],
        "detectable": detectable,
        "min_pairs": power.min_pairs_for_alpha(alpha),
        "note": (
            "Paired by prompt: one prompt's difference has SD = SD x sqrt(2 / experts) "
            "(independent ratings, conservative). Two-sided paired t power (scipy noncentral "
            "t), pairs divided by 0.955 for the Wilcoxon test; at least "
            f"{power.min_pairs_for_alpha(alpha)} pairs, the fewest whose smallest exact "
            f"Wilcoxon p-value is under {alpha}. Per test: with Holm over m tests, plan with "
            "alpha / m."
        ),
    }


def study_report(
    study: Study,
    *,
    sd_over: str = "ratings",
    pair_by: str = "group",
    n_boot: int = 10000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the report page, the API and the exports show (JSON-serialisable)."""
    if sd_over not in stats.SD_OVER:
        raise Refused(f"sd_over must be one of {', '.join(stats.SD_OVER)}")
    if pair_by not in stats.PAIRINGS:
        raise Refused(f"pair_by must be one of {', '.join(stats.PAIRINGS)}")
    rows = rating_rows(study)
    conditions = study_conditions(study)
    cells = stats.describe(rows, sd_over=sd_over, conditions=conditions)
    table = []
    for dimension in (*stats.DIMENSIONS, stats.COMPREHENSIVE):
        label = dict(Dimension.choices).get(dimension, "Comprehensive score (mean of dimensions)")
        entry = {"dimension": dimension, "label": label, "conditions": {}}
        for c in cells:
            if c.dimension == dimension:
                entry["conditions"][c.condition] = {"mean": c.mean, "sd": c.sd, "n": c.n}
        entry["cells"] = [
            {"condition": c, **entry["conditions"].get(c, {"mean": None, "sd": None, "n": 0})}
            for c in conditions
        ]
        table.append(entry)
    compared = [c for c in conditions if c not in (study.reference_condition, REFERENCE_CONDITION)]
    has_reference = any(r.condition == study.reference_condition for r in rows)
    comparisons = (
        stats.paired_comparisons(
            rows,
            reference=study.reference_condition,
            conditions=compared,
            pair_by=pair_by,
            n_boot=n_boot,
            seed=seed,
        )
        if has_reference and compared
        else []
    )
    metric_table, image_metrics = metric_summary(study)
    # Spearman: per generated image, the experts' mean score vs the mean metric over references.
    human: dict[tuple[int, str], list[float]] = defaultdict(list)
    item_to_generated = dict(study.items.filter(kind="generated").values_list("pk", "generated_id"))
    for r in rows + stats.composites(rows):
        if r.item in item_to_generated:
            human[(item_to_generated[r.item], r.dimension)].append(r.score)
    correlations = []
    generated_ids = sorted(image_metrics)
    for metric in ("mse", "psnr", "ssim"):
        for dimension in (*stats.DIMENSIONS, stats.COMPREHENSIVE):
            xs, ys = [], []
            for pk in generated_ids:
                scores = human.get((pk, dimension))
                xs.append(image_metrics[pk][metric])
                ys.append(sum(scores) / len(scores) if scores else None)
            rho, p, n = stats.spearman(xs, ys)
            correlations.append(
                {"metric": metric, "dimension": dimension, "rho": rho, "p": p, "n": n}
            )
    # Holm over every Spearman test in the table, as the comparisons are.
    tested = [c for c in correlations if c["p"] is not None]
    for c, adjusted in zip(tested, stats.holm([c["p"] for c in tested]), strict=True):
        c["p_holm"] = adjusted
    for c in correlations:
        c.setdefault("p_holm", None)
    comparison_rows = [c.as_dict() for c in comparisons]
    warnings = []
    for c in comparison_rows:
        c["min_p"] = power.min_attainable_p(c["n_pairs"])
        if c["n_pairs"] and c["min_p"] > 0.05:
            c["warning"] = (
                f"{c['n_pairs']} pair{'s' if c['n_pairs'] != 1 else ''}: the smallest p-value "
                f"the test can give is {c['min_p']:.3g}, so it cannot reach 0.05 whatever the "
                f"scores"
            )
        else:
            c["warning"] = ""
    too_few = sorted({c["n_pairs"] for c in comparison_rows if c["warning"]})
    if too_few:
        warnings.append(
            f"Too few pairs for a test: {', '.join(map(str, too_few))} pair(s) give a smallest "
            f"attainable p-value above 0.05 (the exact Wilcoxon test needs at least "
            f"{power.min_pairs_for_alpha(0.05)})."
        )
    n_experts = len({r.rater for r in rows})
    if n_experts == 1:
        warnings.append(
            "1 expert: no agreement can be measured and every comparison is one person's "
            "judgement; Spearman p-values are adjusted (Holm) but read them with caution."
        )
    references = study_references(study)
    training_refs = [r["image_id"] for r in references if r["split"] == "train"]
    if training_refs:
        warnings.append(
            "References that are training images of a compared run (reproduction only, left "
            f"out of the held-out and distribution metrics): images {training_refs}."
        )
    if not any(r["split"] != "train" for r in references):
        warnings.append(
            "No held-out reference is declared: the held-out and distribution metrics are empty."
        )
    attention = attention_checks(study)
    for a in attention:
        if a["flagged"]:
            warnings.append(
                f"Expert {a['username']} failed {len(a['failed'])} of {a['checks']} attention "
                "checks (calibration images with a known answer)."
            )
    distribution_rows = [
        {**row, "label": f"{row['condition']} ({run_label(row.get('run'))})"}
        for row in study.metric_distribution
    ]
    return {
        "study": {
            "id": study.pk,
            "title": study.title,
            "status": study.status,
            "reference_condition": study.reference_condition,
            "items": study.items.count(),
            "experts": n_experts,
            "experts_label": f"{n_experts} expert{'s' if n_experts != 1 else ''}",
            "ratings": len(rows),
        },
        "warnings": warnings,
        "references": references,
        "pairings": study_pairings(study),
        "protocols": [{"name": name, "description": text} for name, text in PROTOCOLS.items()],
        "distribution": distribution_rows,
        "attention_checks": attention,
        "audit": rating_audit(study),
        "power": study_power(study, rows),
        "conditions": conditions,
        "sd_over": sd_over,
        "sd_note": SD_NOTES[sd_over],
        "table": table,
        "agreement": [a.as_dict() for a in stats.agreement(rows)] if rows else [],
        "agreement_note": AGREEMENT_NOTE,
        "comparisons": comparison_rows,
        "comparison_note": comparison_note(pair_by, n_boot, seed),
        "metrics": metric_table,
        "metrics_note": (
            "MSE, PSNR (dB) and SSIM (scikit-image definition: 7x7 window, channel_axis=-1, "
            "data_range=255) of each generated image against the declared references it is "
            "paired with (see references and pairings), centre-cropped to the same size; one "
            "row per protocol, run and condition, never pooled across runs. PSNR means leave "
            "out identical pairs (infinite PSNR); n_identical counts them."
        ),
        "metric_references": study.metric_references,
        "metric_references_note": (
            "Images no model drew, scored the same way against the held-out references: the LoRAs' "
            "training images (their style, in other layouts; a sample of at most "
            f"{metrics.MAX_REFERENCE_OTHERS}) and a flat image of each reference's mean colour. "
            "Per-image metrics against one reference reward the right colour in the right "
            "place; when the training images score below a flat image, they cannot show style."
        ),
        "correlations": correlations,
        "near_copies": sorted(
            MemorisationCheck.objects.filter(
                near_copy=True, generated_id__in=list(item_to_generated.values())
            ).values_list("generated_id", flat=True)
        ),
    }


def report_csv(report: dict[str, Any]) -> str:
    """Table 2, agreement and comparisons as one CSV with a ``section`` column."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["section", "dimension", "condition", "n", "mean", "sd", "extra"])
    for row in report["table"]:
        for condition, cell in row["conditions"].items():
            w.writerow(
                [
                    "table",
                    row["dimension"],
                    condition,
                    cell["n"],
                    cell["mean"],
                    cell["sd"],
                    f"sd_over={report['sd_over']}",
                ]
            )
    for a in report["agreement"]:
        w.writerow(
            [
                "agreement",
                a["dimension"],
                "",
                a["n_units"],
                "",
                "",
                f"alpha_ordinal={a['alpha_ordinal']};icc2_1={a['icc2_1']};icc2_k={a['icc2_k']};"
                f"icc_targets={a['icc_targets']}",
            ]
        )
    for c in report["comparisons"]:
        w.writerow(
            [
                "comparison",
                c["dimension"],
                f"{c['condition']} vs {c['reference']}",
                c["n_pairs"],
                c["mean_difference"],
                "",
                f"ci_low={c['ci_low']};ci_high={c['ci_high']};W={c['statistic']};"
                f"p={c['p_value']};p_holm={c['p_holm']}",
            ]
        )
    for m in report["metrics"]:
        w.writerow(
            [
                "metrics",
                m["protocol"],
                m["label"],
                m["n_pairs"],
                "",
                "",
                f"mse={m['mse_mean']};psnr={m['psnr_mean']};ssim={m['ssim_mean']};"
                f"n_identical={m['n_identical']};run={m['run']}",
            ]
        )
    for d in report["distribution"]:
        w.writerow(
            [
                "metrics_distribution",
                "distribution",
                d["label"],
                d["n_generated"],
                "",
                "",
                f"swd_x1e3={d['swd_x1e3']};colour_emd={d['colour_emd']};"
                f"n_references={d['n_references']};features={d['features']['status']};"
                f"run={d['run']}",
            ]
        )
    for r in report["references"]:
        w.writerow(
            [
                "reference",
                r["split"],
                r["accession_number"],
                "",
                "",
                "",
                f"image_id={r['image_id']};used_for={'+'.join(r['used_for'])}",
            ]
        )
    for p in report["pairings"]:
        w.writerow(
            [
                "pairing",
                p["protocol"],
                p["condition"],
                "",
                "",
                "",
                f"generated_id={p['generated_id']};reference_id={p['reference_id']};"
                f"split={p['split']};run={p['run']}",
            ]
        )
    for a in report["audit"]:
        w.writerow(
            [
                "audit",
                a["dimension"],
                a["username"],
                "",
                "",
                "",
                f"item={a['item']};old={a['old_score']};new={a['new_score']};at={a['changed_at']}",
            ]
        )
    for warning in report["warnings"]:
        w.writerow(["warning", "", "", "", "", "", warning])
    for m in report["metric_references"]:
        w.writerow(
            [
                "metrics_reference",
                "",
                m["condition"],
                m["n_pairs"],
                "",
                "",
                f"mse={m['mse_mean']};psnr={m['psnr_mean']};ssim={m['ssim_mean']}",
            ]
        )
    for c in report["correlations"]:
        w.writerow(
            [
                "spearman",
                c["dimension"],
                c["metric"],
                c["n"],
                c["rho"],
                "",
                f"p={c['p']};p_holm={c['p_holm']}",
            ]
        )
    return out.getvalue()


PALETTE = ("#4c6a92", "#b5562b", "#5f8a4a", "#8a5f9e", "#a08a2e", "#555555")


def chart_svg(report: dict[str, Any]) -> str:
    """Means with ± SD error bars per dimension and condition, as accessible inline SVG."""
    conditions = report["conditions"]
    groups = report["table"]
    width, height, left, top, bottom = 720, 320, 40, 20, 70
    plot_h = height - top - bottom
    group_w = (width - left - 10) / max(len(groups), 1)
    bar_w = min(28.0, (group_w - 16) / max(len(conditions), 1))

    def y(v: float) -> float:
        return top + plot_h * (1 - v / 5)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        'aria-labelledby="chart-title chart-desc" class="eval-chart">',
        '<title id="chart-title">Mean score per dimension and condition</title>',
        '<desc id="chart-desc">Bars show means on the 1 to 5 scale; whiskers show plus or '
        f"minus one SD ({escape(report['sd_over'])}). The same numbers are in the table.</desc>",
    ]
    for tick in range(6):
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="11">{tick}</text>'
        )
    for gi, row in enumerate(groups):
        x0 = left + gi * group_w + 8
        for ci, condition in enumerate(conditions):
            cell = row["conditions"].get(condition) or {}
            mean, sd = cell.get("mean"), cell.get("sd")
            if mean is None:
                continue
            x = x0 + ci * bar_w
            color = PALETTE[ci % len(PALETTE)]
            parts.append(
                f'<rect x="{x:.1f}" y="{y(mean):.1f}" width="{bar_w - 3:.1f}" '
                f'height="{y(0) - y(mean):.1f}" fill="{color}">'
                f"<title>{escape(row['label'])}, {escape(condition)}: {mean:.2f}"
                f"{f' ± {sd:.2f}' if sd is not None else ''}</title></rect>"
            )
            if sd is not None:
                cx = x + (bar_w - 3) / 2
                lo, hi = y(max(mean - sd, 0)), y(min(mean + sd, 5))
                parts.append(
                    f'<path d="M{cx:.1f} {lo:.1f}V{hi:.1f}M{cx - 4:.1f} {lo:.1f}h8'
                    f'M{cx - 4:.1f} {hi:.1f}h8" stroke="#111" stroke-width="1.5"/>'
                )
        label = row["label"].replace(" (mean of dimensions)", "")
        parts.append(
            f'<text x="{x0 + group_w / 2 - 8:.1f}" y="{height - bottom + 16}" '
            f'text-anchor="middle" font-size="11">{escape(label)}</text>'
        )
    for ci, condition in enumerate(conditions):
        lx = left + ci * 130
        parts.append(
            f'<rect x="{lx}" y="{height - 24}" width="12" height="12" '
            f'fill="{PALETTE[ci % len(PALETTE)]}"/>'
            f'<text x="{lx + 16}" y="{height - 14}" font-size="12">{escape(condition)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
