"""Each policy's oracle price against its error: per seed, the window's mean error and the
cumulative calls at its end, summarised over seeds, and which policies make the Pareto front."""
from types import SimpleNamespace

import pytest

from collapse_sim.report.analysis import cost_points


def rows(policy, calls, errors):
    """One row per seed and generation; ``calls`` and ``errors`` map seed -> per-generation lists."""
    return [{"policy": policy, "lineage": f"{policy}-s{seed}", "seed": seed, "generation": g,
             "oracle_calls_total": calls[seed][g], "rmse_forces_id": errors[seed][g]}
            for seed in calls for g in range(len(calls[seed]))]


RUN = SimpleNamespace(rows=(
    rows("replace", {0: [60, 60, 60], 1: [60, 60, 60]}, {0: [10, 20, 30], 1: [12, 22, 34]})
    + rows("fresh-real", {0: [60, 75, 90], 1: [60, 75, 90]}, {0: [10, 12, 14], 1: [12, 14, 16]})
    + rows("active", {0: [60, 80, 100], 1: [60, 82, 104]}, {0: [10, 16, 18], 1: [12, 16, 20]})))


def test_last_generation_by_default():
    points = {p.policy: p for p in cost_points(RUN, "rmse_forces_id")}
    assert points["replace"].calls.mean == 60 and points["replace"].error.mean == pytest.approx(32)
    assert points["fresh-real"].error.mean == pytest.approx(15) and points["fresh-real"].error.n == 2
    assert points["active"].calls.mean == pytest.approx(102)
    # active costs more than fresh-real and is worse: off the front; replace is cheapest
    assert {p for p, x in points.items() if x.front} == {"replace", "fresh-real"}


def test_window_averages_each_seed_then_summarises():
    points = {p.policy: p for p in cost_points(RUN, "rmse_forces_id", window=(1, 2))}
    assert points["replace"].error.mean == pytest.approx((25 + 28) / 2)
    assert points["active"].error.mean == pytest.approx((17 + 18) / 2)
    assert points["active"].calls.mean == pytest.approx(102)  # at the window's end


def test_a_seed_missing_a_generation_of_the_window_is_left_out():
    run = SimpleNamespace(rows=[r for r in RUN.rows if not (r["seed"] == 1 and r["generation"] == 1)])
    points = {p.policy: p for p in cost_points(run, "rmse_forces_id", window=(1, 2))}
    assert points["replace"].error.n == 1 and points["replace"].error.mean == pytest.approx(25)
    assert cost_points(SimpleNamespace(rows=[]), "rmse_forces_id") == []
