"""The active (DP-GEN trust window) policy: the deviation, the window rule and the budget on
hand-made numbers, the training set on hand-made committees, and the counts it reports."""
import math

import numpy as np
import pytest
from pydantic import ValidationError
from test_oracle_policies import labelled, oracle_copy, rng

from collapse_sim.data.pools import Pool
from collapse_sim.data.structures import ORACLE_CHECKED, attach_labels, forces_of
from collapse_sim.policies import GenerationData, Offered, OracleRequest
from collapse_sim.policies import make as make_policy
from collapse_sim.policies.active import (
    CANDIDATE,
    DISCARDED,
    TRUSTED,
    ActiveSettings,
    classify,
    committee_generations,
    max_force_deviation,
    select_candidates,
)

HISTORY = [GenerationData(0, [Pool("real", 0, tuple(labelled(0.0, np.zeros(6), i, "real") for i in range(4)))])]


def test_max_force_deviation_is_dpgens():
    # two members; atom 0 agrees, atom 1 differs by 2 eV/Å along x: std over members = 1 eV/Å
    forces = np.zeros((2, 2, 3))
    forces[1, 1, 0] = 2.0
    assert max_force_deviation(forces) == pytest.approx(1.0)
    # three members, differences along two axes: sqrt(mean_m |F - mean F|^2) on the worst atom
    f = np.zeros((3, 2, 3))
    f[:, 0, :2] = [[1, 0], [-1, 0], [0, 3]]
    spread = f[:, 0] - f[:, 0].mean(axis=0)
    assert max_force_deviation(f) == pytest.approx(math.sqrt((spread ** 2).sum(axis=1).mean()))
    assert max_force_deviation(np.ones((4, 3, 3))) == 0.0


def test_window_edges_are_inclusive():
    assert classify([0.0, 0.049, 0.05, 0.1, 0.15, 0.151], 0.05, 0.15) == [
        TRUSTED, TRUSTED, CANDIDATE, CANDIDATE, CANDIDATE, DISCARDED]
    assert classify([0.09, 0.1, 0.11], 0.1, 0.1) == [TRUSTED, CANDIDATE, DISCARDED]  # lo = hi: a one-value window


def test_budget_takes_the_most_deviating_candidates():
    deviations = [0.06, 0.14, 0.01, 0.10, 0.2, 0.14]
    classes = classify(deviations, 0.05, 0.15)
    assert select_candidates(deviations, classes, None) == [0, 1, 3, 5]
    assert select_candidates(deviations, classes, 2) == [1, 5]  # the two at 0.14
    assert select_candidates(deviations, classes, 3) == [1, 3, 5]
    assert select_candidates(deviations, classes, 0) == []
    assert select_candidates([0.1, 0.1, 0.1], [CANDIDATE] * 3, 2) == [0, 1]  # ties: lower index first


def test_lo_above_hi_is_one_clear_error():
    with pytest.raises(ValidationError, match=r"lo \(0.2 eV/Å\) must not exceed hi \(0.1 eV/Å\)"):
        ActiveSettings(kind="active", lo=0.2, hi=0.1)
    with pytest.raises(ValidationError):
        ActiveSettings(kind="active", lo=0.05, hi=0.15, committee=1)


def test_committee_is_the_last_k_generations():
    assert committee_generations(0, 3) == [0]  # generation 1: only generation 0's model
    assert committee_generations(1, 3) == [0, 1]
    assert committee_generations(5, 3) == [3, 4, 5]
    assert committee_generations(5, 2) == [4, 5]


def committee_pool(n=6, generation=1):
    """A pool of n structures and a committee whose member g moves atom 1's x force by g·shift[i]:
    two members, so structure i's deviation is shift[i]/2."""
    shifts = [0.0, 0.12, 0.2, 0.3, 0.5, 0.26][:n]
    pool = Pool("synthetic", generation, tuple(labelled(float(i), np.zeros(6), i) for i in range(n)))

    def predict_with(g, structures):
        out = []
        for i, atoms in enumerate(structures):
            forces = forces_of(atoms).copy()
            forces[1, 0] += (g - generation) * shifts[i]
            out.append(attach_labels(atoms, 0.0, forces))
        return out

    return pool, predict_with, [s / 2 for s in shifts]


def test_active_asks_the_window_and_carries_everything_forward():
    pool, predict_with, deviations = committee_pool()  # 0, 0.06, 0.1, 0.15, 0.25, 0.13
    policy = make_policy(ActiveSettings(kind="active", lo=0.05, hi=0.15, committee=2, max_oracle=3))
    request = policy.request(HISTORY, pool, rng(), predict_with)
    assert request.indices == [2, 3, 5] and request.fresh_real == 0  # candidates 1, 2, 3, 5; the budget drops 1
    assert request.note.deviations == pytest.approx(deviations)
    checked = {i: oracle_copy(pool.structures[i], 100.0 + i, 1.0) for i in request.indices}
    selection = policy.select(HISTORY, Offered(pool, None, checked), request, rng())
    out = selection.pools
    assert out[0] is HISTORY[-1].train[0]  # accumulate-style: the previous training set first
    assert [a.info["i"] for a in out[1].structures] == [0]  # trusted, model labels
    assert not any(ORACLE_CHECKED in a.info for a in out[1].structures)
    assert [a.info["i"] for a in out[2].structures] == [2, 3, 5]
    assert all(a.calc.results["energy"] == 100.0 + a.info["i"] for a in out[2].structures)
    expected = dict(policy_kept=1, policy_oracle_labelled=3, policy_rejected=2)
    assert {k: selection.counts[k] for k in expected} == expected
    # the committee's deviations, summarised for calibrating the window: numpy's linear percentiles
    for q in (10, 50, 90):
        assert selection.counts[f"policy_deviation_p{q}"] == pytest.approx(np.percentile(deviations, q))
    assert selection.counts["policy_deviation_p50"] == pytest.approx((0.1 + 0.13) / 2)


def test_one_model_committee_asks_a_random_budget():
    pool, predict_with, _ = committee_pool(generation=0)
    policy = make_policy(ActiveSettings(kind="active", lo=0.05, hi=0.15, max_oracle=4))
    request = policy.request(HISTORY, pool, rng(), lambda g, s: pytest.fail("no committee with one model"))
    asked = request.indices
    assert len(asked) == 4 and asked == sorted(set(asked)) and asked == policy.request(HISTORY, pool, rng()).indices
    assert all(math.isnan(d) for d in request.note.deviations)
    selection = policy.select(HISTORY, Offered(pool, None, {i: pool.structures[i] for i in asked}), request, rng())
    assert len(selection.pools) == 2
    assert selection.counts == dict(policy_kept=0, policy_oracle_labelled=4, policy_rejected=2)  # no deviations
    unlimited = make_policy(ActiveSettings(kind="active", lo=0.05, hi=0.15))
    assert unlimited.request(HISTORY, pool, rng()).indices == list(range(len(pool)))


def test_select_needs_the_request_made_for_its_pool():
    pool, predict_with, _ = committee_pool()
    policy = make_policy(ActiveSettings(kind="active", lo=0.05, hi=0.15, committee=2))
    with pytest.raises(ValueError, match="the request made for this synthetic pool"):
        policy.select(HISTORY, Offered(pool), OracleRequest(), rng())  # no window
    other, _, _ = committee_pool(n=5)
    with pytest.raises(ValueError, match="the request made for this synthetic pool"):
        policy.select(HISTORY, Offered(pool), policy.request(HISTORY, other, rng(), predict_with), rng())
    with pytest.raises(ValueError, match="requested"):  # the labels asked for did not come
        policy.select(HISTORY, Offered(pool), policy.request(HISTORY, pool, rng(), predict_with), rng())
