"""How big a rating study must be, and what a finished one could detect (plain scipy, no Django).

The report's comparison is paired by prompt: for each prompt, the mean score of condition A
minus that of condition B, over the experts who rated it. With ratings of SD ``sd`` (between
ratings of the same condition; 001_465742bc70709bdb reports 0.3-0.7 with 4 raters) and ``k``
experts, one prompt's difference has SD ``sd * sqrt(2 / k)`` when ratings are independent
(a conservative assumption: experts who agree on an image make it smaller). The power of the
two-sided paired test over ``n`` prompts is the paired t-test's (noncentral t); the Wilcoxon
signed-rank test the report runs needs about 1/0.955 times as many pairs for normal data
(its asymptotic relative efficiency, 3/pi), so the prompt counts are divided by 0.955 and
rounded up. ``alpha`` is per test: pass alpha / m to plan for Holm over m tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from scipy import stats as st

WILCOXON_ARE = 3 / math.pi  # 0.955
SEED_SDS = (0.3, 0.7)  # 001_465742bc70709bdb, 4 raters
MAX_PAIRS = 10_000


def difference_sd(sd: float, experts: int) -> float:
    """SD of one prompt's paired difference (mean of ``experts`` ratings per condition)."""
    if sd <= 0 or experts < 1:
        raise ValueError("sd must be positive and experts at least 1")
    return sd * math.sqrt(2 / experts)


def paired_power(n: int, difference: float, sd_diff: float, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample t-test on ``n`` paired differences."""
    if n < 2:
        return 0.0
    df = n - 1
    crit = st.t.ppf(1 - alpha / 2, df)
    nc = abs(difference) / sd_diff * math.sqrt(n)
    return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def pairs_needed(
    difference: float, sd: float, experts: int, power: float = 0.8, alpha: float = 0.05
) -> int | None:
    """Prompts (pairs) needed for the Wilcoxon test to detect ``difference``; None past
    MAX_PAIRS."""
    if difference <= 0:
        raise ValueError("difference must be positive")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise ValueError("power and alpha must be between 0 and 1")
    sd_diff = difference_sd(sd, experts)
    n = 2
    while paired_power(n, difference, sd_diff, alpha) < power:
        n += 1
        if n > MAX_PAIRS:
            return None
    wilcoxon = math.ceil(n / WILCOXON_ARE)
    # The exact signed-rank test cannot reach alpha with too few pairs at all.
    return max(wilcoxon, min_pairs_for_alpha(alpha))


def detectable_difference(
    n: int, sd: float, experts: int, power: float = 0.8, alpha: float = 0.05
) -> float | None:
    """The smallest difference ``n`` prompts and ``experts`` experts detect with ``power``;
    None when ``n`` pairs cannot reach ``alpha`` at all."""
    n_eff = n * WILCOXON_ARE
    if n < min_pairs_for_alpha(alpha) or n_eff < 2:
        return None
    sd_diff = difference_sd(sd, experts)
    lo, hi = 0.0, 50 * sd_diff
    for _ in range(60):
        mid = (lo + hi) / 2
        if _power_fractional(n_eff, mid, sd_diff, alpha) < power:
            lo = mid
        else:
            hi = mid
    return hi


def _power_fractional(n: float, difference: float, sd_diff: float, alpha: float) -> float:
    df = n - 1
    crit = st.t.ppf(1 - alpha / 2, df)
    nc = difference / sd_diff * math.sqrt(n)
    return float(st.nct.sf(crit, df, nc) + st.nct.cdf(-crit, df, nc))


def min_attainable_p(n_pairs: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give on
    ``n_pairs`` non-zero differences: every sign the same, 2 / 2**n."""
    if n_pairs < 1:
        return 1.0
    return min(1.0, 2 / 2**n_pairs)


def min_pairs_for_alpha(alpha: float = 0.05) -> int:
    n = 1
    while min_attainable_p(n) > alpha:
        n += 1
    return n


@dataclass(frozen=True)
class PlanRow:
    experts: int
    sd: float
    prompts: int | None  # pairs of prompts (each rated under both conditions)
    images: int | None  # generated images: prompts x images per prompt x conditions

    def as_dict(self) -> dict:
        return asdict(self)


def plan(
    *,
    difference: float,
    sds: tuple[float, ...] = SEED_SDS,
    experts: tuple[int, ...] = (1, 2, 3, 4, 6, 8),
    power: float = 0.8,
    alpha: float = 0.05,
    images_per_prompt: int = 1,
    conditions: int = 2,
) -> list[PlanRow]:
    """Prompts and images needed, for each SD and panel size."""
    rows = []
    for sd in sds:
        for k in experts:
            n = pairs_needed(difference, sd, k, power, alpha)
            rows.append(
                PlanRow(k, sd, n, None if n is None else n * images_per_prompt * conditions)
            )
    return rows
