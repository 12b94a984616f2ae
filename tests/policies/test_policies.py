import numpy as np
import pytest
from ase import Atoms

from collapse_sim.data.pools import Pool, composition, flatten, group_into_pools
from collapse_sim.policies import GenerationData
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


def test_replace_keeps_only_newest_synthetic():
    fresh = pool("synthetic", 2, 10)
    out = make_policy(ReplaceSettings(kind="replace")).next_training_set(history_after(2), None, fresh, {}, rng())
    assert out == [fresh]


def test_accumulate_keeps_everything():
    history = history_after(2)
    fresh = pool("synthetic", 2, 10)
    out = make_policy(AccumulateSettings(kind="accumulate")).next_training_set(history, None, fresh, {}, rng())
    assert [p.key for p in out] == [("real", 0), ("synthetic", 0), ("synthetic", 1), ("synthetic", 2)]
    assert composition(out) == {"n_train": 40, "n_real": 10, "n_synthetic": 30}


def test_accumulate_subsample_respects_budget_and_draws_from_all_pools():
    history = history_after(3)
    fresh = pool("synthetic", 3, 10)
    policy = make_policy(AccumulateSubsampleSettings(kind="accumulate-subsample", budget=20))
    out = policy.next_training_set(history, None, fresh, {}, rng())
    assert sum(len(p) for p in out) == 20
    assert len({p.key for p in out}) >= 3
    fresh_kept = sum(len(p) for p in out if p.key == fresh.key)
    assert policy.last_counts == dict(policy_kept=fresh_kept, policy_oracle_labelled=0, policy_rejected=10 - fresh_kept)
    assert policy.fresh_real_needed(10) == 0
    # default budget: the size of the real data
    default_budget = make_policy(AccumulateSubsampleSettings(kind="accumulate-subsample"))
    default = default_budget.next_training_set(history, None, fresh, {}, rng())
    assert sum(len(p) for p in default) == 10


@pytest.mark.parametrize("fraction, n_real", [(0.0, 0), (0.25, 2), (1.0, 8)])
def test_fresh_real_fraction(fraction, n_real):
    policy = make_policy(FreshRealSettings(kind="fresh-real", real_fraction=fraction))
    assert policy.fresh_real_needed(8) == n_real
    real = pool("real", 1, n_real) if n_real else None
    out = policy.next_training_set(history_after(1), real, pool("synthetic", 0, 8), {}, rng())
    counts = composition(out)
    assert counts["n_train"] == 8 and counts["n_real"] == n_real


def test_pools_roundtrip_through_provenance():
    pools = [pool("real", 0, 3), pool("synthetic", 0, 2), pool("synthetic", 1, 4)]
    regrouped = group_into_pools(flatten(pools))
    assert [(p.key, len(p)) for p in regrouped] == [(p.key, len(p)) for p in pools]
