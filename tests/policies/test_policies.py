import numpy as np
import pytest
from ase import Atoms

from collapse_sim.data.pools import Pool, composition, flatten, group_into_pools
from collapse_sim.policies import GenerationData, Offered, OracleRequest
from collapse_sim.policies import make as make_policy
from collapse_sim.policies.accumulate import AccumulateSettings
from collapse_sim.policies.accumulate_subsample import AccumulateSubsampleSettings
from collapse_sim.policies.fresh_real import FreshRealSettings
from collapse_sim.policies.replace import ReplaceSettings


def pool(origin, generation, n):
    structures = tuple(Atoms("Cu", positions=[[0, 0, i]], info={"origin": origin, "generation": generation, "i": i})
                       for i in range(n))
    return Pool(origin, generation, structures)


def history_after(generations: int, n=10):
    """A lineage history: real gen-0 data, then accumulate-style training sets."""
    history = [GenerationData(0, [pool("real", 0, n)])]
    for g in range(1, generations + 1):
        synthetic = pool("synthetic", g - 1, n)
        history.append(GenerationData(g, history[-1].train + [synthetic], synthetic))
    return history


def rng():
    return np.random.default_rng(0)


def select(policy, history, synthetic, fresh_real=None):
    return policy.select(history, Offered(synthetic, fresh_real), policy.request(history, synthetic, rng()), rng())


def test_replace_keeps_only_newest_synthetic():
    fresh = pool("synthetic", 2, 10)
    selection = select(make_policy(ReplaceSettings(kind="replace")), history_after(2), fresh)
    assert selection.pools == [fresh] and selection.counts == {}


def test_accumulate_keeps_everything():
    history = history_after(2)
    fresh = pool("synthetic", 2, 10)
    out = select(make_policy(AccumulateSettings(kind="accumulate")), history, fresh).pools
    assert [p.key for p in out] == [("real", 0), ("synthetic", 0), ("synthetic", 1), ("synthetic", 2)]
    assert composition(out) == {"n_train": 40, "n_real": 10, "n_synthetic": 30}


def test_accumulate_subsample_respects_budget_and_draws_from_all_pools():
    history = history_after(3)
    fresh = pool("synthetic", 3, 10)
    policy = make_policy(AccumulateSubsampleSettings(kind="accumulate-subsample", budget=20))
    assert policy.request(history, fresh, rng()) == OracleRequest()  # asks the oracle for nothing
    selection = select(policy, history, fresh)
    out = selection.pools
    assert sum(len(p) for p in out) == 20
    assert len({p.key for p in out}) >= 3
    fresh_kept = sum(len(p) for p in out if p.key == fresh.key)
    assert selection.counts == dict(policy_kept=fresh_kept, policy_oracle_labelled=0, policy_rejected=10 - fresh_kept)
    # default budget: the size of the real data
    default_budget = make_policy(AccumulateSubsampleSettings(kind="accumulate-subsample"))
    default = select(default_budget, history, fresh).pools
    assert sum(len(p) for p in default) == 10


@pytest.mark.parametrize("fraction, n_real", [(0.0, 0), (0.25, 2), (1.0, 8)])
def test_fresh_real_fraction(fraction, n_real):
    policy = make_policy(FreshRealSettings(kind="fresh-real", real_fraction=fraction))
    synthetic = pool("synthetic", 0, 8)
    assert policy.request(history_after(1), synthetic, rng()) == OracleRequest(fresh_real=n_real)
    real = pool("real", 1, n_real) if n_real else None
    counts = composition(select(policy, history_after(1), synthetic, real).pools)
    assert counts["n_train"] == 8 and counts["n_real"] == n_real


def test_pools_roundtrip_through_provenance():
    pools = [pool("real", 0, 3), pool("synthetic", 0, 2), pool("synthetic", 1, 4)]
    regrouped = group_into_pools(flatten(pools))
    assert [(p.key, len(p)) for p in regrouped] == [(p.key, len(p)) for p in pools]
