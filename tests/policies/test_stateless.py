"""Every built-in policy is a function of its settings and its arguments: what it asks of the
oracle and what it did come back as values, nothing stays on the instance, and calling it again
or calling a fresh instance decides the same."""
import numpy as np
import pytest
from test_active import HISTORY, committee_pool
from test_oracle_policies import labelled, oracle_copy, rng

from collapse_sim.data.pools import Pool
from collapse_sim.policies import Offered
from collapse_sim.policies import make as make_policy
from collapse_sim.policies.accumulate import AccumulateSettings
from collapse_sim.policies.accumulate_subsample import AccumulateSubsampleSettings
from collapse_sim.policies.active import ActiveSettings
from collapse_sim.policies.corrected import CorrectedSettings
from collapse_sim.policies.curated import CuratedSettings
from collapse_sim.policies.fresh_real import FreshRealSettings
from collapse_sim.policies.replace import ReplaceSettings
from collapse_sim.policies.verified import VerifiedSettings

SETTINGS = [
    ReplaceSettings(kind="replace"),
    AccumulateSettings(kind="accumulate"),
    AccumulateSubsampleSettings(kind="accumulate-subsample", budget=5),
    FreshRealSettings(kind="fresh-real", real_fraction=0.5),
    VerifiedSettings(kind="verified", check_fraction=0.5, max_force_error=0.3, unchecked="keep",
                     add_oracle_labelled=True),
    CorrectedSettings(kind="corrected", fraction=0.5, gamma=1.0),
    CuratedSettings(kind="curated", budget=5),
    ActiveSettings(kind="active", lo=0.05, hi=0.15, committee=2, max_oracle=2),
]


def one_generation(policy):
    """Both phases of one generation on a hand-made pool, the oracle played by hand; what they
    returned, in comparable form."""
    pool, predict_with, _ = committee_pool()
    request = policy.request(HISTORY, pool, rng(1), predict_with)
    fresh_real = None
    if request.fresh_real:
        fresh_real = Pool("real", 2, tuple(labelled(-1.0, np.zeros(6), 10 + i, "real")
                                           for i in range(request.fresh_real)))
    checked = {i: oracle_copy(pool.structures[i], 50.0 + i, 0.2 * i) for i in request.indices}
    selection = policy.select(HISTORY, Offered(pool, fresh_real, checked), request, rng(2))
    pools = [(p.key, [(a.info["i"], a.calc.results["energy"]) for a in p.structures]) for p in selection.pools]
    return request, pools, selection.counts


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.kind)
def test_a_policy_keeps_no_state_between_calls(settings):
    policy = make_policy(settings)
    first = one_generation(policy)
    assert one_generation(policy) == first  # called again
    assert one_generation(make_policy(settings)) == first  # a fresh instance
    assert vars(policy) == {"settings": settings}  # nothing but its settings on the instance


def test_the_oracle_policies_ask_and_report():
    """The parametrised test compares like with like; here: the policies that ask do ask, and the
    filtering ones report counts, so the comparison above is not of empty results."""
    results = {s.kind: one_generation(make_policy(s)) for s in SETTINGS}
    assert results["fresh-real"][0].fresh_real == 3
    assert all(results[k][0].indices for k in ("verified", "corrected", "active"))
    assert all(results[k][2] for k in ("accumulate-subsample", "verified", "active", "curated"))
