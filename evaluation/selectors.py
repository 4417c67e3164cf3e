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

from evaluation import metrics, stats
from evaluation.models import (
    Assignment,
    Dimension,
    MemorisationCheck,
    MetricResult,
    Rating,
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
    """The study if the user is assigned to it; 404 otherwise (existence is not revealed)."""
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


def metric_summary(study: Study) -> tuple[list[dict[str, Any]], dict[int, dict[str, float]]]:
    """Per condition (000_799139077b62291c's table) and per generated image (mean over refs)."""
    rows = list(MetricResult.objects.filter(study=study))
    by_condition: dict[str, list[metrics.PairMetrics]] = defaultdict(list)
    per_image: dict[int, list[MetricResult]] = defaultdict(list)
    for r in rows:
        by_condition[r.condition].append(
            metrics.PairMetrics(mse=r.mse, psnr=r.psnr, ssim=r.ssim, identical=r.identical)
        )
        per_image[r.generated_id].append(r)
    table = []
    for condition in study_conditions(study):
        if condition in by_condition:
            summary = metrics.summarise(by_condition[condition])
            table.append({"condition": condition, **summary.__dict__})
    image_means = {}
    for pk, rs in per_image.items():
        psnrs = [r.psnr for r in rs if r.psnr is not None]
        image_means[pk] = {
            "mse": sum(r.mse for r in rs) / len(rs),
            "psnr": sum(psnrs) / len(psnrs) if psnrs else None,
            "ssim": sum(r.ssim for r in rs) / len(rs),
        }
    return table, image_means


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
        raise ValueError(f"sd_over must be one of {', '.join(stats.SD_OVER)}")
    if pair_by not in stats.PAIRINGS:
        raise ValueError(f"pair_by must be one of {', '.join(stats.PAIRINGS)}")
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
    return {
        "study": {
            "id": study.pk,
            "title": study.title,
            "status": study.status,
            "reference_condition": study.reference_condition,
            "items": study.items.count(),
            "experts": len({r.rater for r in rows}),
            "ratings": len(rows),
        },
        "conditions": conditions,
        "sd_over": sd_over,
        "sd_note": SD_NOTES[sd_over],
        "table": table,
        "agreement": [a.as_dict() for a in stats.agreement(rows)] if rows else [],
        "agreement_note": AGREEMENT_NOTE,
        "comparisons": [c.as_dict() for c in comparisons],
        "comparison_note": comparison_note(pair_by, n_boot, seed),
        "metrics": metric_table,
        "metrics_note": (
            "MSE, PSNR (dB) and SSIM (scikit-image definition: 7x7 window, channel_axis=-1, "
            "data_range=255) of each generated image against its item's reference image(s), "
            "centre-cropped to the same size. PSNR means leave out identical pairs (infinite "
            "PSNR); n_identical counts them."
        ),
        "metric_references": study.metric_references,
        "metric_references_note": (
            "Images no model drew, scored the same way against the same references: the LoRAs' "
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
                "",
                m["condition"],
                m["n_pairs"],
                "",
                "",
                f"mse={m['mse_mean']};psnr={m['psnr_mean']};ssim={m['ssim_mean']};"
                f"n_identical={m['n_identical']}",
            ]
        )
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
        w.writerow(["spearman", c["dimension"], c["metric"], c["n"], c["rho"], "", f"p={c['p']}"])
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
