"""Statistics checked against values computed by hand or published in the textbooks."""

import math

import numpy as np
import pytest

from evaluation.stats import (
    COMPREHENSIVE,
    DIMENSIONS,
    RatingRow,
    agreement,
    bootstrap_ci,
    describe,
    holm,
    icc,
    krippendorff_alpha,
    paired_comparisons,
    spearman,
    wilcoxon_signed_rank,
)

N = None
# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, values 1-5, missing data. Published: nominal .743, ordinal .815, interval .849.
KRIPP_A = [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N]
KRIPP_B = [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3]
KRIPP_C = [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N]
KRIPP_D = [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]


@pytest.mark.parametrize(
    ("level", "published"), [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849)]
)
def test_krippendorff_textbook_example(level, published):
    units = list(zip(KRIPP_A, KRIPP_B, KRIPP_C, KRIPP_D, strict=True))
    assert krippendorff_alpha(units, level) == pytest.approx(published, abs=5e-4)


def test_krippendorff_ordinal_by_hand():
    # Units (1,1), (1,2), (2,2), two coders. Coincidences (each pair counts 1/(m-1) = 1):
    # o11 = 2, o12 = o21 = 1, o22 = 2; n1 = n2 = 3, n = 6.
    # Ordinal delta12 = (n1 + n2 - (n1 + n2)/2)^2 = 3^2 = 9.
    # alpha = 1 - (n-1) * sum(o*delta) / sum(nc*nk*delta) = 1 - 5 * 18 / (2*3*3*9) = 1 - 90/162
    assert krippendorff_alpha([(1, 1), (1, 2), (2, 2)], "ordinal") == pytest.approx(1 - 90 / 162)
    # Perfect agreement -> 1; a unit with one value is not pairable and is ignored.
    assert krippendorff_alpha([(1, 1), (2, 2), (3, N), (3, 3)], "ordinal") == pytest.approx(1.0)


def test_icc_shrout_fleiss_table():
    # Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges; published ICC(2,1) = .29,
    # ICC(2,4) = .62, ICC(3,1) = .71.
    ratings = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    )
    res = icc(ratings)
    assert res.icc2_1 == pytest.approx(0.29, abs=0.005)
    assert res.icc2_k == pytest.approx(0.62, abs=0.005)
    assert res.icc3_1 == pytest.approx(0.71, abs=0.005)
    assert (res.n_targets, res.k_raters) == (6, 4)


def test_icc_by_hand_three_by_two():
    # x = [[1, 2], [3, 5], [5, 5]]; grand mean 3.5. Row means 1.5, 4, 5 -> SSR = 2*(4+.25+2.25)
    # = 13. Col means 3, 4 -> SSC = 3*(.25+.25) = 1.5. SST = 6.25+2.25+.25+2.25+2.25+2.25 = 15.5
    # SSE = 15.5 - 13 - 1.5 = 1. MSR = 13/2 = 6.5, MSC = 1.5/1, MSE = 1/2 = 0.5.
    # ICC(2,1) = (6.5-.5)/(6.5 + .5 + 2*(1.5-.5)/3) = 6/(23/3) = 18/23
    # ICC(2,k) = (6.5-.5)/(6.5 + (1.5-.5)/3) = 6/(41/6) = 36/41; ICC(3,1) = 6/(6.5+.5) = 6/7
    res = icc(np.array([[1, 2], [3, 5], [5, 5]]))
    assert res.icc2_1 == pytest.approx(18 / 23)
    assert res.icc2_k == pytest.approx(36 / 41)
    assert res.icc3_1 == pytest.approx(6 / 7)


def test_icc_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="at least 2 targets x 2 raters and 5 ratings"):
        icc(np.array([[1, 2], [3, 5]]))  # 4 ratings: too few for the two-way ANOVA
    with pytest.raises(ValueError, match="complete matrix"):
        icc(np.array([[1, 2], [3, np.nan], [2, 2]]))
    with pytest.raises(ValueError, match="do not vary"):
        icc(np.full((4, 3), 3.0))


def test_holm_by_hand():
    # p sorted: .005 (x4 = .02), .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04 -> max so far .06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


def test_wilcoxon_by_hand():
    # differences 1..5 all positive: W- = 0; exact two-sided p = 2 * (1 / 2^5) = 0.0625
    stat, p = wilcoxon_signed_rank([0, 0, 0, 0, 0], [1, 2, 3, 4, 5])
    assert stat == 0
    assert p == pytest.approx(0.0625)
    assert wilcoxon_signed_rank([1, 2], [1, 2]) == (0.0, 1.0)  # no difference at all


def test_bootstrap_ci_by_hand():
    # d = [0, 1, 2]: the 27 equally likely resamples give sums 0..6 with counts 1,3,6,7,6,3,1,
    # so P(mean = 0) = P(mean = 2) = 1/27 = 3.7 % > 2.5 %: the percentile CI is exactly (0, 2).
    assert bootstrap_ci([0, 1, 2], n_boot=10000, seed=1) == (0.0, 2.0)
    # A constant difference has a degenerate interval; the seed makes runs repeatable.
    assert bootstrap_ci([2.5, 2.5], seed=3) == (2.5, 2.5)
    d = [0.1, 0.5, -0.2, 0.9, 0.3]
    assert bootstrap_ci(d, seed=7) == bootstrap_ci(d, seed=7)
    lo, hi = bootstrap_ci(d, seed=7)
    assert lo < np.mean(d) < hi
    assert bootstrap_ci([0.4], seed=0) == (0.4, 0.4)  # one pair: every resample is that pair


def test_spearman_by_hand():
    # ranks x 1,2,3,4 vs y 1,3,2,4: sum d^2 = 2; rho = 1 - 6*2/(4*(16-1)) = 0.8
    rho, _p, n = spearman([1, 2, 3, 4], [1, 3, 2, 4])
    assert rho == pytest.approx(0.8)
    assert n == 4
    assert spearman([1, 2], [2, 1])[0] is None  # fewer than 3 pairs


def table2_fixture() -> list[RatingRow]:
    """Two raters, prompts g1 and g2, one base and one LoRA image per prompt.

    base: style r1 = (b1: 2, b2: 3), r2 = (b1: 2, b2: 1); every other dimension 2.
    lora: r1 rates 4 on everything, r2 rates 5 on everything.
    """
    rows = []
    style = {("r1", "b1"): 2, ("r1", "b2"): 3, ("r2", "b1"): 2, ("r2", "b2"): 1}
    for rater in ("r1", "r2"):
        for item, group in (("b1", "g1"), ("b2", "g2")):
            for dim in DIMENSIONS:
                score = style[(rater, item)] if dim == "style_consistency" else 2
                rows.append(RatingRow(rater, item, "base", group, dim, score))
        for item, group in (("l1", "g1"), ("l2", "g2")):
            for dim in DIMENSIONS:
                rows.append(RatingRow(rater, item, "lora", group, dim, 4 if rater == "r1" else 5))
    return rows


def cell(cells, condition, dimension):
    return next(c for c in cells if c.condition == condition and c.dimension == dimension)


def test_describe_sd_over_ratings_by_hand():
    cells = describe(table2_fixture(), sd_over="ratings")
    # base style: [2, 3, 2, 1] mean 2, deviations 0, 1, 0, -1 -> var 2/3, SD sqrt(2/3)
    c = cell(cells, "base", "style_consistency")
    assert (c.n, c.mean, c.sd) == (4, 2.0, pytest.approx(math.sqrt(2 / 3)))
    # lora style: [4, 4, 5, 5] mean 4.5, deviations +-.5 -> var 1/3
    c = cell(cells, "lora", "style_consistency")
    assert (c.mean, c.sd) == (4.5, pytest.approx(math.sqrt(1 / 3)))
    # comprehensive base, per rater x item mean of the 4 dimensions:
    # r1b1 = 2, r1b2 = (3+2+2+2)/4 = 2.25, r2b1 = 2, r2b2 = (1+2+2+2)/4 = 1.75
    # mean 2, deviations 0, .25, 0, -.25 -> var .125/3
    c = cell(cells, "base", COMPREHENSIVE)
    assert (c.n, c.mean, c.sd) == (4, 2.0, pytest.approx(math.sqrt(0.125 / 3)))
    # a dimension with no spread: base detail all 2 -> SD 0
    assert cell(cells, "base", "detail_richness").sd == 0.0


def test_describe_sd_over_rater_means_by_hand():
    cells = describe(table2_fixture(), sd_over="rater_means")
    # base style rater means: r1 (2+3)/2 = 2.5, r2 (2+1)/2 = 1.5 -> mean 2, SD sqrt(.5) = .7071
    c = cell(cells, "base", "style_consistency")
    assert (c.n, c.mean, c.sd, c.sd_over) == (2, 2.0, pytest.approx(math.sqrt(0.5)), "rater_means")
    # comprehensive base rater means: r1 (2+2.25)/2 = 2.125, r2 (2+1.75)/2 = 1.875
    # SD = sqrt(2 * .125^2 / 1) = .1768
    c = cell(cells, "base", COMPREHENSIVE)
    assert c.sd == pytest.approx(math.sqrt(2 * 0.125**2))
    with pytest.raises(ValueError):
        describe(table2_fixture(), sd_over="items")


def test_paired_comparisons_by_hand():
    comps = paired_comparisons(table2_fixture(), reference="base", pair_by="group", seed=0)
    assert len(comps) == 5  # four dimensions + comprehensive, lora vs base
    style = next(c for c in comps if c.dimension == "style_consistency")
    # pair by prompt, mean over raters: base g1 = (2+2)/2 = 2, g2 = (3+1)/2 = 2; lora 4.5, 4.5
    assert (style.n_pairs, style.mean_reference, style.mean_condition) == (2, 2.0, 4.5)
    assert style.mean_difference == 2.5
    assert (style.ci_low, style.ci_high) == (2.5, 2.5)  # constant differences
    # all five tests have the same p; Holm multiplies the smallest by 5 and keeps monotone
    assert all(c.p_holm == pytest.approx(min(1.0, 5 * c.p_value)) for c in comps)
    per_rater = paired_comparisons(table2_fixture(), reference="base", pair_by="rater_group")
    assert next(c for c in per_rater if c.dimension == "style_consistency").n_pairs == 4


def test_agreement_per_dimension():
    rows = [
        RatingRow(rater, f"u{i}", "c", f"u{i}", "style_consistency", v)
        for rater, col in zip("ABCD", (KRIPP_A, KRIPP_B, KRIPP_C, KRIPP_D), strict=True)
        for i, v in enumerate(col)
        if v is not None
    ]
    (style,) = agreement(rows, dimensions=("style_consistency",))
    assert style.alpha_ordinal == pytest.approx(0.815, abs=5e-4)
    assert style.n_units == 11  # unit 12 has one value only
    # complete cases (rated by all four): units 2-9 -> 8 targets
    assert (style.icc_targets, style.icc_raters) == (8, 4)
    assert style.icc2_1 is not None
