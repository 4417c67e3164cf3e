"""Statistics of an expert rating study. Plain numpy/scipy, no Django.

Input is a flat list of :class:`RatingRow` rows (rater, item, condition, group, dimension, score).
``group`` is what pairs conditions: the prompt both a base and a LoRA image were generated from.

- :func:`describe` — mean ± SD per condition x dimension plus the comprehensive score (mean of the
  four dimensions), as in Table 2 of 001_465742bc70709bdb. ``sd_over="ratings"``: SD (ddof 1) over
  individual ratings (for the comprehensive score: over each rater's per-item mean of the four
  dimensions). ``sd_over="rater_means"``: each rater's mean first, then mean and SD (ddof 1)
  across raters — the spread between experts, not between images.
- :func:`krippendorff_alpha` — nominal, ordinal or interval, missing values allowed
  (Krippendorff 2011), computed by the ``krippendorff`` package.
- :func:`icc` — Shrout & Fleiss (1979) ICC(2,1) and ICC(2,k): two-way random effects, absolute
  agreement, single rater and mean of k raters (also ICC(3,1) consistency); complete cases only;
  computed by ``pingouin.intraclass_corr``.
- :func:`paired_comparisons` — per dimension, paired Wilcoxon signed-rank test (scipy, two-sided)
  of each condition against a reference condition, Holm-corrected over all tests in the report
  (statsmodels' ``multipletests``), with a seeded percentile bootstrap 95 % CI of the mean paired
  difference (``scipy.stats.bootstrap``).

The libraries are imported inside the functions: the web process imports this module, and only
a report needs them.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

DIMENSIONS = ("style_consistency", "image_text_match", "detail_richness", "artistic_beauty")
COMPREHENSIVE = "comprehensive"
SD_OVER = ("ratings", "rater_means")


@dataclass(frozen=True)
class RatingRow:
    rater: Hashable
    item: Hashable
    condition: str
    group: Hashable  # e.g. the prompt: base and LoRA images of one prompt are a pair
    dimension: str
    score: float


@dataclass(frozen=True)
class Cell:
    condition: str
    dimension: str  # one of DIMENSIONS or "comprehensive"
    n: int  # ratings (sd_over="ratings") or raters (sd_over="rater_means")
    mean: float | None
    sd: float | None
    sd_over: str

    def as_dict(self) -> dict:
        return asdict(self)


def _mean_sd(values: Sequence[float]) -> tuple[float | None, float | None]:
    if len(values) == 0:
        return None, None
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), (float(arr.std(ddof=1)) if arr.size > 1 else None)


def composites(
    rows: Iterable[RatingRow], dimensions: Sequence[str] = DIMENSIONS
) -> list[RatingRow]:
    """One comprehensive row per (rater, item): the mean of its dimensions, if all are rated."""
    by_key: dict[tuple, dict[str, float]] = defaultdict(dict)
    meta: dict[tuple, RatingRow] = {}
    for r in rows:
        if r.dimension in dimensions:
            by_key[(r.rater, r.item)][r.dimension] = r.score
            meta[(r.rater, r.item)] = r
    out = []
    for key, scores in by_key.items():
        if len(scores) == len(dimensions):
            r = meta[key]
            out.append(
                RatingRow(
                    rater=r.rater,
                    item=r.item,
                    condition=r.condition,
                    group=r.group,
                    dimension=COMPREHENSIVE,
                    score=float(np.mean([scores[d] for d in dimensions])),
                )
            )
    return out


def describe(
    rows: Iterable[RatingRow],
    *,
    sd_over: str = "ratings",
    dimensions: Sequence[str] = DIMENSIONS,
    conditions: Sequence[str] | None = None,
) -> list[Cell]:
    """Mean ± SD per condition x dimension, then the comprehensive score per condition."""
    if sd_over not in SD_OVER:
        raise ValueError(f"sd_over must be one of {SD_OVER}")
    rows = list(rows)
    all_rows = rows + composites(rows, dimensions)
    conditions = list(conditions) if conditions else sorted({r.condition for r in rows})
    cells = []
    for condition in conditions:
        for dimension in (*dimensions, COMPREHENSIVE):
            chosen = [r for r in all_rows if r.condition == condition and r.dimension == dimension]
            if sd_over == "ratings":
                values = [r.score for r in chosen]
            else:
                per_rater: dict[Hashable, list[float]] = defaultdict(list)
                for r in chosen:
                    per_rater[r.rater].append(r.score)
                values = [float(np.mean(v)) for v in per_rater.values()]
            mean, sd = _mean_sd(values)
            cells.append(Cell(condition, dimension, len(values), mean, sd, sd_over))
    return cells


# --- agreement ----------------------------------------------------------------------------


def krippendorff_alpha(units: Iterable[Sequence[float | None]], level: str = "ordinal") -> float:
    """Krippendorff's alpha; ``units``: one sequence of coders' values per unit (None: missing).

    Units with fewer than two values are not pairable and count for nothing.
    """
    import krippendorff

    if level not in ("nominal", "ordinal", "interval"):
        raise ValueError("level must be nominal, ordinal or interval")
    rows = [[np.nan if v is None else float(v) for v in unit] for unit in units]
    pairable = [[v for v in row if not np.isnan(v)] for row in rows]
    pairable = [values for values in pairable if len(values) >= 2]
    if len({v for values in pairable for v in values}) < 2:
        # The package would divide by a zero expected disagreement; say what is wrong instead.
        raise ValueError("alpha needs at least two different values among pairable units")
    coders = max(len(row) for row in rows)
    data = np.full((coders, len(rows)), np.nan)  # the package wants coders x units
    for j, row in enumerate(rows):
        data[: len(row), j] = row
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level))


@dataclass(frozen=True)
class ICCResult:
    icc2_1: float  # two-way random, absolute agreement, one rater
    icc2_k: float  # two-way random, absolute agreement, mean of k raters
    icc3_1: float  # two-way mixed, consistency, one rater
    n_targets: int
    k_raters: int


ICC_MIN_RATINGS = 5  # pingouin's two-way ANOVA refuses fewer values


def icc(matrix: np.ndarray) -> ICCResult:
    """Shrout & Fleiss ICCs from a complete targets x raters matrix (pingouin's two-way ANOVA)."""
    import pandas as pd
    import pingouin

    x = np.asarray(matrix, dtype=np.float64)
    if x.ndim != 2 or min(x.shape) < 2 or x.size < ICC_MIN_RATINGS or np.isnan(x).any():
        raise ValueError(
            "ICC needs a complete matrix of at least 2 targets x 2 raters and "
            f"{ICC_MIN_RATINGS} ratings"
        )
    n, k = x.shape
    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "score": x.ravel(),
        }
    )
    with warnings.catch_warnings():
        # pingouin 0.7 calls dropna(inplace=True), which pandas 3.1 flags as deprecated.
        warnings.filterwarnings("ignore", message="The inplace keyword")
        warnings.filterwarnings("ignore", category=RuntimeWarning)  # 0/0 when nothing varies
        table = pingouin.intraclass_corr(long, targets="target", raters="rater", ratings="score")
    values = table.set_index("Type")["ICC"]
    if values.isna().any():
        raise ValueError("ICC is undefined: the ratings do not vary between items")
    return ICCResult(
        icc2_1=float(values["ICC(A,1)"]),  # pingouin's names: A = absolute agreement
        icc2_k=float(values["ICC(A,k)"]),
        icc3_1=float(values["ICC(C,1)"]),  # C = consistency
        n_targets=n,
        k_raters=k,
    )


@dataclass(frozen=True)
class Agreement:
    dimension: str
    alpha_ordinal: float | None
    n_units: int  # items with at least two ratings
    icc2_1: float | None
    icc2_k: float | None
    icc_targets: int  # items rated by every rater (ICC uses complete cases only)
    icc_raters: int
    note: str

    def as_dict(self) -> dict:
        return asdict(self)


def agreement(rows: Iterable[RatingRow], dimensions: Sequence[str] = DIMENSIONS) -> list[Agreement]:
    """Krippendorff's ordinal alpha and ICC(2,1)/ICC(2,k) per dimension over all rated items."""
    rows = list(rows)
    out = []
    for dimension in dimensions:
        chosen = [r for r in rows if r.dimension == dimension]
        raters = sorted({r.rater for r in chosen}, key=str)
        items = sorted({r.item for r in chosen}, key=str)
        table = {(r.item, r.rater): r.score for r in chosen}
        units = [[table.get((i, c)) for c in raters] for i in items]
        notes = []
        try:
            alpha = krippendorff_alpha(units, "ordinal")
        except ValueError as exc:
            alpha, notes = None, [f"alpha: {exc}"]
        complete = [u for u in units if all(v is not None for v in u)]
        try:
            res = icc(np.asarray(complete, dtype=np.float64).reshape(len(complete), len(raters)))
            icc21, icc2k = res.icc2_1, res.icc2_k
        except ValueError as exc:
            icc21 = icc2k = None
            notes.append(f"ICC: {exc}")
        out.append(
            Agreement(
                dimension=dimension,
                alpha_ordinal=alpha,
                n_units=sum(1 for u in units if sum(v is not None for v in u) >= 2),
                icc2_1=icc21,
                icc2_k=icc2k,
                icc_targets=len(complete),
                icc_raters=len(raters),
                note="; ".join(notes),
            )
        )
    return out


# --- paired tests -------------------------------------------------------------------------


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), input order."""
    from statsmodels.stats.multitest import multipletests

    if len(p_values) == 0:
        return []
    return [float(p) for p in multipletests(np.asarray(p_values, float), method="holm")[1]]


def bootstrap_ci(
    differences: Sequence[float], *, n_boot: int = 10000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of paired differences (resampling units, seeded)."""
    from scipy.stats import bootstrap

    d = np.asarray(differences, dtype=np.float64)
    if d.size == 0:
        raise ValueError("no paired differences")
    if d.size == 1:  # every resample is that one difference (scipy needs two observations)
        return float(d[0]), float(d[0])
    res = bootstrap(
        (d,), np.mean, n_resamples=n_boot, confidence_level=level, method="percentile", rng=seed
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_signed_rank(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Two-sided paired Wilcoxon signed-rank (scipy; zero differences dropped). (W, p)."""
    from scipy.stats import wilcoxon

    d = np.asarray(y, dtype=np.float64) - np.asarray(x, dtype=np.float64)
    if not np.any(d != 0):
        return 0.0, 1.0  # no non-zero difference: no evidence of a difference
    res = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


@dataclass(frozen=True)
class Comparison:
    dimension: str
    condition: str  # compared with ``reference``
    reference: str
    n_pairs: int
    mean_reference: float | None
    mean_condition: float | None
    mean_difference: float | None  # condition - reference
    ci_low: float | None
    ci_high: float | None
    statistic: float | None
    p_value: float | None
    p_holm: float | None
    pair_by: str

    def as_dict(self) -> dict:
        return asdict(self)


PAIRINGS: dict[str, Callable[[RatingRow], Hashable]] = {
    "group": lambda r: r.group,  # one pair per prompt (mean over raters and images)
    "rater_group": lambda r: (r.rater, r.group),  # one pair per rater x prompt
}


def paired_comparisons(
    rows: Iterable[RatingRow],
    *,
    reference: str,
    conditions: Sequence[str] | None = None,
    dimensions: Sequence[str] = DIMENSIONS,
    pair_by: str = "group",
    n_boot: int = 10000,
    seed: int = 0,
) -> list[Comparison]:
    """Each condition vs ``reference`` per dimension (+ comprehensive), Holm over all tests."""
    rows = list(rows)
    key = PAIRINGS[pair_by]
    all_rows = rows + composites(rows, dimensions)
    if conditions is None:
        conditions = sorted({r.condition for r in rows} - {reference})
    pending = []
    for condition in conditions:
        for dimension in (*dimensions, COMPREHENSIVE):
            per_unit: dict[str, dict[Hashable, list[float]]] = {
                reference: defaultdict(list),
                condition: defaultdict(list),
            }
            for r in all_rows:
                if r.dimension == dimension and r.condition in per_unit:
                    per_unit[r.condition][key(r)].append(r.score)
            units = sorted(set(per_unit[reference]) & set(per_unit[condition]), key=str)
            x = [float(np.mean(per_unit[reference][u])) for u in units]
            y = [float(np.mean(per_unit[condition][u])) for u in units]
            pending.append((condition, dimension, x, y))
    tested = []
    for condition, dimension, x, y in pending:
        if len(x) >= 1:
            stat, p = wilcoxon_signed_rank(x, y)
            diffs = np.asarray(y) - np.asarray(x)
            lo, hi = bootstrap_ci(diffs, n_boot=n_boot, seed=seed)
            tested.append((condition, dimension, x, y, stat, p, float(diffs.mean()), lo, hi))
        else:
            tested.append((condition, dimension, x, y, None, None, None, None, None))
    adjusted = iter(holm([t[5] for t in tested if t[5] is not None]))
    out = []
    for condition, dimension, x, y, stat, p, diff, lo, hi in tested:
        out.append(
            Comparison(
                dimension=dimension,
                condition=condition,
                reference=reference,
                n_pairs=len(x),
                mean_reference=float(np.mean(x)) if x else None,
                mean_condition=float(np.mean(y)) if y else None,
                mean_difference=diff,
                ci_low=lo,
                ci_high=hi,
                statistic=stat,
                p_value=p,
                p_holm=next(adjusted) if p is not None else None,
                pair_by=pair_by,
            )
        )
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None, int]:
    """Spearman's rho and two-sided p (scipy) over pairs where both values exist. (rho, p, n)."""
    from scipy.stats import spearmanr

    pairs = [(a, b) for a, b in zip(x, y, strict=True) if a is not None and b is not None]
    n = len(pairs)
    if n < 3:
        return None, None, n
    xs, ys = zip(*pairs, strict=True)
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return None, None, n  # a constant column has no rank correlation
    res = spearmanr(xs, ys)
    return float(res.statistic), float(res.pvalue), n
