"""Statistics over seeds against hand-computed values on tiny inputs."""
from __future__ import annotations

import math
import random

import pytest

from collapse_sim.report.statistics import NOT_SEPARATED, SEPARATED, degraded, paired, past_threshold, summarise

T_975_DF2 = 4.302652729911275  # Student t quantile, 97.5 %, 2 degrees of freedom (tables: 4.303)


def test_summary_of_three_seeds_by_hand():
    s = summarise([1.0, 2.0, 6.0])
    # mean 3; deviations -2, -1, 3 -> sample variance (4 + 1 + 9) / 2 = 7; SE = sqrt(7 / 3)
    assert (s.n, s.mean) == (3, 3.0)
    assert s.sem == pytest.approx(math.sqrt(7 / 3))
    assert (s.low, s.high) == pytest.approx((3 - T_975_DF2 * math.sqrt(7 / 3), 3 + T_975_DF2 * math.sqrt(7 / 3)))


def test_summary_undefined_below_two_seeds():
    one = summarise([5.0])
    assert one.n == 1 and one.mean == 5.0 and all(math.isnan(x) for x in (one.sem, one.low, one.high))
    assert summarise([]).n == 0 and math.isnan(summarise([]).mean)


def test_same_improvement_on_every_seed_is_a_zero_width_separated_interval():
    base = {0: 10.0, 1: 30.0, 2: 20.0}
    better = {k: v - 4.0 for k, v in base.items()}
    d = paired(better, base)
    assert d.n == 3 and d.diff.mean == -4.0 and d.diff.low == d.diff.high == -4.0
    assert d.verdict == SEPARATED and d.separated and d.reason == ""
    assert d.t_p == 0.0  # zero spread: t = -inf
    assert d.wilcoxon_p == pytest.approx(0.25)  # exact: 2 of the 2**3 sign patterns are as extreme
    assert d.wilcoxon_cannot_reject


def test_overlapping_seeds_are_not_separated():
    a = {0: 1.0, 1: 5.0, 2: 3.0}
    b = {0: 2.0, 1: 4.0, 2: 3.5}  # differences -1, +1, -0.5: interval around -1/6 includes 0
    d = paired(a, b)
    assert d.verdict == NOT_SEPARATED and not d.separated
    assert d.reason == "the 95 % interval of the difference includes 0"
    assert d.diff.mean == pytest.approx(-1 / 6) and d.diff.low < 0 < d.diff.high
    assert d.t_p > 0.05


def test_pairing_is_by_seed_not_by_order():
    a = {0: 1.0, 1: 2.0, 2: 3.0, 3: 10.0}
    b = {0: 0.5, 1: 1.4, 2: 2.6, 3: 9.2}
    shuffled_a = dict(random.Random(1).sample(list(a.items()), len(a)))
    shuffled_b = dict(random.Random(2).sample(list(b.items()), len(b)))
    assert list(shuffled_a) != list(shuffled_b)
    assert paired(shuffled_a, shuffled_b) == paired(a, b)
    assert paired(a, b).diff.mean == pytest.approx((0.5 + 0.6 + 0.4 + 0.8) / 4)


def test_only_seeds_both_policies_have_are_paired():
    d = paired({0: 1.0, 1: 2.0, 7: 100.0}, {0: 0.0, 1: 1.0, 8: -100.0})
    assert d.n == 2 and d.diff.mean == 1.0
    assert d.verdict == NOT_SEPARATED and d.reason == "only 2 paired seed(s), fewer than 3"
    assert paired({0: 1.0}, {1: 1.0}).reason == "no seed has both policies"


def test_identical_policies_have_no_test_and_are_not_separated():
    d = paired({0: 1.0, 1: 2.0, 2: 3.0}, {0: 1.0, 1: 2.0, 2: 3.0})
    assert d.diff.low == d.diff.high == 0.0 and d.verdict == NOT_SEPARATED
    assert math.isnan(d.t_p) and math.isnan(d.wilcoxon_p)


def test_wilcoxon_reaches_five_percent_from_six_pairs():
    base = {k: float(k) for k in range(6)}
    d = paired({k: v + 1 + k / 10 for k, v in base.items()}, base)
    assert d.wilcoxon_p == pytest.approx(2 / 2 ** 6) and not d.wilcoxon_cannot_reject


def test_threshold_counts_follow_the_direction_of_degradation():
    gen0 = {0: 10.0, 1: 10.0, 2: 10.0, 3: 10.0}
    later = {0: 12.5, 1: 11.0, 2: 7.0, 4: 99.0}  # +25 %, +10 %, -30 %; seed 4 has no generation 0
    assert past_threshold(gen0, later, "up", 0.2) == (1, 3)  # error: only +25 % is worse by > 20 %
    assert past_threshold(gen0, later, "down", 0.2) == (1, 3)  # diversity: only -30 %
    assert past_threshold(gen0, later, None, 0.2) == (0, 3)
    assert degraded("up", 10.0, 12.5, 0.2) and not degraded("up", 10.0, 12.5, 0.3)


def test_pareto_front_keeps_only_points_nothing_beats_on_both_axes():
    from collapse_sim.report.statistics import pareto_front

    points = [(60, 20.0), (60, 15.0), (90, 15.0), (90, 10.0), (200, 12.0), (30, 40.0)]
    # (60, 20) loses to (60, 15); (90, 15) to (60, 15) and (90, 10); (200, 12) to (90, 10)
    assert pareto_front(points) == [False, True, False, True, False, True]
    assert pareto_front([(1.0, 1.0), (1.0, 1.0)]) == [True, True]  # ties dominate neither
    assert pareto_front([]) == []
