"""The policies that ask the oracle (verified, corrected) and the curated one, on hand-made
pools whose labels and distances are known."""
import numpy as np
import pytest
import yaml
from ase import Atoms
from ase.build import bulk
from scenario_factory import ROOT

from collapse_sim.data.pools import Pool, composition
from collapse_sim.data.structures import ORACLE_CHECKED, attach_labels, energy_of, forces_of
from collapse_sim.policies import GenerationData, Offered, OracleRequest
from collapse_sim.policies import make as make_policy
from collapse_sim.policies.corrected import CorrectedSettings
from collapse_sim.policies.curated import CuratedSettings, farthest_point_sampling
from collapse_sim.policies.verified import VerifiedSettings
from collapse_sim.scenario import ScenarioError, parse_scenario

N_ATOMS = 2


def labelled(energy, forces, i, origin="synthetic", **info):
    atoms = Atoms("Cu2", positions=[[0, 0, 0], [0, 0, 2.5 + 0.1 * i]],
                  info={"origin": origin, "generation": 1, "i": i, **info})
    return attach_labels(atoms, energy, np.asarray(forces, dtype=float).reshape(N_ATOMS, 3))


def synthetic_pool(n=5):
    return Pool("synthetic", 1, tuple(labelled(float(i), np.zeros(6), i) for i in range(n)))


def oracle_copy(model_atoms, energy, force_delta):
    """The oracle's label of a structure: atom 0's force differs by ``force_delta`` along x."""
    forces = forces_of(model_atoms).copy()
    forces[0, 0] += force_delta
    out = attach_labels(model_atoms, energy, forces)
    out.info[ORACLE_CHECKED] = "oracle"
    return out


def rng(seed=0):
    return np.random.default_rng(seed)


HISTORY = [GenerationData(0, [Pool("real", 0, tuple(labelled(0.0, np.zeros(6), i, "real") for i in range(4)))])]


def select(policy, pool, checked, history=HISTORY, seed=0):
    """The second phase alone, the labels of ``checked`` as if asked for (the oracle policies need no note)."""
    return policy.select(history, Offered(pool, None, checked), OracleRequest(indices=sorted(checked)), rng(seed))


def test_requests_are_the_fraction_distinct_and_keyed():
    policy = make_policy(VerifiedSettings(kind="verified", check_fraction=0.4, max_force_error=0.1))
    request = policy.request(HISTORY, synthetic_pool(10), rng())
    requests = request.indices
    assert len(requests) == 4 and len(set(requests)) == 4 and all(0 <= i < 10 for i in requests)
    assert request == policy.request(HISTORY, synthetic_pool(10), rng()) and request.fresh_real == 0
    none_corrected = make_policy(CorrectedSettings(kind="corrected", fraction=0.0, gamma=1))
    assert none_corrected.request(HISTORY, synthetic_pool(), rng()) == OracleRequest()


@pytest.mark.parametrize("unchecked, kept", [("drop", [0, 3]), ("keep", [0, 3, 4])])
def test_verified_keeps_exactly_the_checked_structures_below_the_threshold(unchecked, kept):
    pool = synthetic_pool()
    # max per-atom force errors 0.05, 0.1 (the edge: not below, so dropped), 0.2, 0.0; structure 4 unchecked
    checked = {i: oracle_copy(pool.structures[i], 9.0, delta) for i, delta in enumerate([0.05, 0.1, 0.2, 0.0])}
    policy = make_policy(VerifiedSettings(kind="verified", max_force_error=0.1, unchecked=unchecked))
    selection = select(policy, pool, checked)
    out = selection.pools
    assert len(out) == 1 and [a.info["i"] for a in out[0].structures] == kept
    assert [energy_of(a) for a in out[0].structures] == [float(i) for i in kept]  # model labels kept
    assert selection.counts == dict(policy_kept=len(kept), policy_rejected=5 - len(kept), policy_oracle_labelled=0)


def test_verified_force_error_is_the_per_atom_vector_norm():
    pool = synthetic_pool(1)
    oracle = attach_labels(pool.structures[0], 0.0, np.array([[0.75, 1.0, 0.0], [0.0, 0.0, 0.0]]))  # |ΔF| = 1.25
    oracle.info[ORACLE_CHECKED] = "oracle"
    for threshold, n_kept in ((1.25, 0), (1.2501, 1)):
        policy = make_policy(VerifiedSettings(kind="verified", max_force_error=threshold, unchecked="drop",
                                              add_oracle_labelled=True))
        selection = select(policy, pool, {0: oracle})
        out = selection.pools
        assert [len(p) for p in out] == [1] * n_kept + [1]  # the oracle-labelled copy is always added
        assert selection.counts == dict(policy_kept=n_kept, policy_rejected=1 - n_kept, policy_oracle_labelled=1)
        assert out[-1].structures[0].info[ORACLE_CHECKED] and composition(out)["n_real"] == 0


def test_structures_the_oracle_failed_on_are_dropped():
    pool = synthetic_pool()
    checked = {0: oracle_copy(pool.structures[0], 9.0, 0.0)}
    offered = Offered(pool, None, checked, failed=frozenset({2, 3}))
    request = OracleRequest(indices=[0, 2, 3])
    verified = make_policy(VerifiedSettings(kind="verified", max_force_error=0.1, unchecked="keep"))
    selection = verified.select(HISTORY, offered, request, rng())
    assert [a.info["i"] for a in selection.pools[0].structures] == [0, 1, 4]  # a failed check fails
    assert selection.counts == dict(policy_kept=3, policy_rejected=2, policy_oracle_labelled=0)
    corrected = make_policy(CorrectedSettings(kind="corrected", fraction=0.6, gamma=1.0))
    [out] = corrected.select(HISTORY, offered, request, rng()).pools
    assert [a.info["i"] for a in out.structures] == [0, 1, 4] and "corrected" in out.structures[0].info[ORACLE_CHECKED]


def test_verified_dropping_the_unchecked_keeps_only_passed_checks_and_active_drops_failed_candidates():
    from collapse_sim.policies.active import ActiveSettings, Window

    pool = synthetic_pool()
    checked = {0: oracle_copy(pool.structures[0], 9.0, 0.0)}
    offered = Offered(pool, None, checked, failed=frozenset({2}))
    verified = make_policy(VerifiedSettings(kind="verified", max_force_error=0.1, unchecked="drop",
                                            add_oracle_labelled=True))
    selection = verified.select(HISTORY, offered, OracleRequest(indices=[0, 2]), rng())
    assert [[a.info["i"] for a in p.structures] for p in selection.pools] == [[0], [0]]  # kept, its oracle copy
    assert selection.counts == dict(policy_kept=1, policy_rejected=4, policy_oracle_labelled=1)
    active = make_policy(ActiveSettings(kind="active", lo=0.1, hi=1.0, committee=2))
    window = Window(1, 5, ["candidate", "trusted", "candidate", "discarded", "trusted"], [0, 2],
                    [0.5, 0.05, 0.5, 2.0, 0.05])
    selection = active.select(HISTORY, offered, OracleRequest(indices=[0, 2], note=window), rng())
    assert {k: selection.counts[k] for k in ("policy_kept", "policy_oracle_labelled", "policy_rejected")} == dict(
        policy_kept=2, policy_oracle_labelled=1, policy_rejected=2)  # 3 above hi, 2 failed
    assert [a.info.get(ORACLE_CHECKED) for a in selection.pools[-1].structures] == ["oracle"]
    with pytest.raises(ValueError, match=r"failed: \[2\]"):
        active.select(HISTORY, Offered(pool, None, {}, failed=frozenset({2})),
                      OracleRequest(indices=[0, 2], note=window), rng())


def test_verified_with_nothing_left_selects_nothing():
    pool = synthetic_pool(2)
    checked = {0: oracle_copy(pool.structures[0], 0.0, 1.0)}
    policy = make_policy(VerifiedSettings(kind="verified", max_force_error=0.1, unchecked="drop"))
    selection = select(policy, pool, checked)
    assert selection.pools == [] and selection.counts["policy_kept"] == 0 and selection.counts["policy_rejected"] == 2


@pytest.mark.parametrize("gamma", [0.0, 1.0, 3.0])
def test_corrected_labels_follow_the_formula(gamma):
    pool = synthetic_pool()
    checked = {i: oracle_copy(pool.structures[i], 10.0 + i, 0.5) for i in (1, 3)}
    out = select(make_policy(CorrectedSettings(kind="corrected", fraction=0.4, gamma=gamma)), pool, checked).pools
    t = gamma / (1 + gamma)
    assert len(out) == 1 and len(out[0]) == len(pool) and out[0].key == pool.key
    for i, atoms in enumerate(out[0].structures):
        model = pool.structures[i]
        if i in checked:
            assert energy_of(atoms) == pytest.approx(t * (10.0 + i) + (1 - t) * i)
            np.testing.assert_allclose(forces_of(atoms), t * forces_of(checked[i]) + (1 - t) * forces_of(model))
            assert "corrected" in atoms.info[ORACLE_CHECKED]
        else:
            assert atoms is model


def test_farthest_point_sampling_picks_the_known_farthest_point_first():
    points = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0], [0.5, 0.5], [-3.0, 0.0]])
    assert farthest_point_sampling(points, 1, 0) == [0]
    assert farthest_point_sampling(points, 3, 0) == [0, 3, 5]  # then the farthest from both
    assert farthest_point_sampling(points, 99, 4)[:2] == [4, 3] and len(farthest_point_sampling(points, 99, 4)) == 6


def test_curated_selects_the_budget_deterministically_from_all_pools():
    def cells(origin, generation, n, stdev):
        out = []
        for i in range(n):
            atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
            atoms.rattle(stdev, seed=100 * generation + i)
            atoms.info.update(origin=origin, generation=generation, i=i)
            out.append(attach_labels(atoms, 0.0, np.zeros((4, 3))))
        return Pool(origin, generation, tuple(out))

    history = [GenerationData(0, [cells("real", 0, 4, 0.05)])]
    fresh = cells("synthetic", 0, 6, 0.2)
    policy = make_policy(CuratedSettings(kind="curated"))
    picks = [select(policy, fresh, {}, history, s).pools for s in (0, 0, 1)]
    keys = [[(p.key, tuple(a.info["i"] for a in p.structures)) for p in out] for out in picks]
    assert sum(len(p) for p in picks[0]) == 4  # default budget: the real data's size
    assert keys[0] == keys[1]
    large_budget = make_policy(CuratedSettings(kind="curated", budget=50))
    everything = select(large_budget, fresh, {}, history).pools
    assert [len(p) for p in everything] == [4, 6]  # a budget above what is available keeps it all


def _policies_scenario(policy: dict) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data["policies"] = [policy]
    return data


@pytest.mark.parametrize("policy, field", [
    ({"kind": "verified", "check_fraction": 1.5, "max_force_error": 0.1}, "check_fraction"),
    ({"kind": "verified", "max_force_error": 0.0}, "max_force_error"),
    ({"kind": "verified", "max_force_error": 0.1, "unchecked": "maybe"}, "unchecked"),
    ({"kind": "corrected", "gamma": -0.5}, "gamma"),
    ({"kind": "corrected", "gamma": 1.0, "fraction": -0.1}, "fraction"),
    ({"kind": "curated", "budget": 0}, "budget"),
])
def test_bad_settings_are_one_line_errors_naming_the_field(policy, field):
    with pytest.raises(ScenarioError) as error:
        parse_scenario(_policies_scenario(policy))
    message = str(error.value)
    assert f"policies.0.{field}" in message and "\n" not in message.strip(), message
