"""Statistics over seeds that a reviewer accepts: each policy's mean, standard error and 95 %
Student-t interval, and the paired difference between two policies with a paired t-test and a
Wilcoxon signed-rank test, each result naming its method.

Why paired: the lineages of one seed share generation 0 (the same real data, the same first
model), so much of the seed-to-seed spread is common to both policies and cancels in the
per-seed difference; comparing the two means as if independent would throw that away.

Pure functions of numbers. They live beside the report, not in ``measure/``, because they
summarise finished runs (the report and ``collapse-sim compare``); nothing in the loop uses them.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from collapse_sim.measure.catalogue import UP

CONFIDENCE = 0.95
#: fewer paired seeds than this never separate two policies, whatever the interval says
MIN_PAIRS = 3
#: with fewer pairs the exact two-sided Wilcoxon p is at least 2 / 2**5 = 0.0625 > 0.05
WILCOXON_MIN_PAIRS = 6
INTERVAL_METHOD = "Student t interval, n − 1 degrees of freedom"
T_TEST = "paired t-test (scipy.stats.ttest_rel, two-sided)"
WILCOXON = "Wilcoxon signed-rank test (scipy.stats.wilcoxon, two-sided, zero differences dropped)"
WILCOXON_TOO_FEW = (f"with fewer than {WILCOXON_MIN_PAIRS} pairs the Wilcoxon signed-rank test cannot reach "
                    "p < 0.05 two-sided, whatever the data")
SEPARATED, NOT_SEPARATED = "separated at 95 %", "not separated at 95 %"


@dataclass(frozen=True)
class Summary:
    """Values over seeds: NaN where undefined (mean with none, spread and interval with one)."""

    n: int
    mean: float
    sem: float  # standard error of the mean, sample std (ddof=1) / sqrt(n)
    low: float  # 95 % Student-t interval of the mean
    high: float


def summarise(values: Iterable[float]) -> Summary:
    """Mean ± standard error and the 95 % t interval (t quantile with n − 1 degrees of freedom:
    with a handful of seeds the normal 1.96 would make the interval too narrow)."""
    x = np.asarray(list(values), dtype=float)
    n = len(x)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    sem = float(x.std(ddof=1) / math.sqrt(n))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sem
    return Summary(n, mean, sem, mean - half, mean + half)


@dataclass(frozen=True)
class PairedDifference:
    """``a − b`` over the seeds both have: the interval, the two tests and the verdict."""

    n: int  # paired seeds
    diff: Summary  # of the per-seed differences a − b
    t_p: float  # paired t-test p; NaN when undefined (fewer than 2 pairs, all differences 0)
    wilcoxon_p: float  # Wilcoxon signed-rank p; NaN when undefined
    verdict: str  # SEPARATED or NOT_SEPARATED
    reason: str  # why not separated ("" when separated)

    @property
    def separated(self) -> bool:
        return self.verdict == SEPARATED

    @property
    def wilcoxon_cannot_reject(self) -> bool:
        return 0 < self.n < WILCOXON_MIN_PAIRS


def paired(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> PairedDifference:
    """Pair ``a`` and ``b`` by key (the seed), never by position, and test ``a − b``. Separated
    means at least ``MIN_PAIRS`` pairs and a 95 % interval of the mean difference that excludes
    0 (equivalently, paired t-test p < 0.05)."""
    keys = sorted(set(a) & set(b), key=repr)
    d = np.array([a[k] - b[k] for k in keys], dtype=float)
    diff = summarise(d)
    t_p = w_p = math.nan
    if len(d) >= 2 and np.any(d != 0):
        with warnings.catch_warnings():  # zero spread: scipy warns, and t = ±inf, p = 0 is the limit
            warnings.simplefilter("ignore", RuntimeWarning)
            t_p = float(stats.ttest_rel(np.array([a[k] for k in keys]), np.array([b[k] for k in keys])).pvalue)
            w_p = float(stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided").pvalue)
    if len(d) == 0:
        reason = "no seed has both policies"
    elif len(d) < MIN_PAIRS:
        reason = f"only {len(d)} paired seed(s), fewer than {MIN_PAIRS}"
    elif not diff.low > 0 and not diff.high < 0:
        reason = "the 95 % interval of the difference includes 0"
    else:
        reason = ""
    return PairedDifference(len(d), diff, t_p, w_p, NOT_SEPARATED if reason else SEPARATED, reason)


def degraded(direction: str | None, baseline: float, value: float, threshold: float) -> bool:
    """Worse than ``baseline`` by more than ``threshold`` (relative) in the column's direction of
    degradation; never for a column without a direction or a zero baseline."""
    if direction is None or baseline == 0:
        return False
    change = (value - baseline) / abs(baseline)
    return change > threshold if direction == UP else -change > threshold


def past_threshold(baseline: Mapping[Hashable, float], values: Mapping[Hashable, float], direction: str | None,
                   threshold: float) -> tuple[int, int]:
    """(seeds degraded beyond ``threshold`` vs their own generation-0 value, seeds that have both)."""
    keys = set(baseline) & set(values)
    return sum(degraded(direction, baseline[k], values[k], threshold) for k in keys), len(keys)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For points (cost, error), both to be minimised: whether each is on the Pareto front, i.e.
    no other point is at most as costly and at most as wrong, and better in one of the two."""
    return [not any(c <= cost and e <= error and (c < cost or e < error) for c, e in points)
            for cost, error in points]

