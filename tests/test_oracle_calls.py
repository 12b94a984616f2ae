"""Oracle-call accounting: the counts in the metrics rows and the reference's info.json add up
to the evaluations the oracle calculator actually made (counted by the calculator itself)."""
import json
from types import SimpleNamespace

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from conftest import run_scenario
from counting_oracle import CountingEMT, FailingOnSynthetic
from pydantic import TypeAdapter
from scenario_factory import tiny_scenario_dict

from collapse_sim.data.pools import Pool
from collapse_sim.data.structures import energy_of
from collapse_sim.oracles import OracleSettings
from collapse_sim.oracles.labelling import oracle_checks
from collapse_sim.scenario import parse_scenario
from collapse_sim.store import RunStore

POLICIES = [{"kind": "verified", "check_fraction": 0.5, "max_force_error": 1000.0, "unchecked": "keep",
             "add_oracle_labelled": True},
            {"kind": "fresh-real", "real_fraction": 0.25}, {"kind": "replace"}]


def test_oracle_calls_equal_the_calculator_evaluations(tmp_path):
    data = tiny_scenario_dict(policies=POLICIES, model={"kind": "linear"})
    data["oracle"]["calculator"] = "counting_oracle.CountingEMT"
    scenario = parse_scenario(data)
    CountingEMT.calls = 0
    root, rows = run_scenario(tmp_path, scenario)
    made = CountingEMT.calls
    info = json.loads(RunStore(root).reference.info.read_text())
    assert info["oracle_calls"] == info["oracle_calls_reference"] + sum(info["oracle_calls_probes"].values())
    assert set(info["oracle_calls_probes"]) == {"id", "ood"} and info["oracle_calls_reference"] >= 16
    by = {(r["lineage"], r["generation"]): r for r in rows}
    gen0 = {r["oracle_calls"] for r in rows if r["generation"] == 0}
    assert len(gen0) == 1 and gen0.pop() >= scenario.real_data.n_structures  # shared: labelled once
    lineage_calls = sum(r["oracle_calls"] for r in rows if r["generation"] > 0)
    assert made == info["oracle_calls"] + by["replace-s0", 0]["oracle_calls"] + lineage_calls
    n = scenario.synthetic.n_structures
    for lineage in ("verified-s0", "fresh-real-s0", "replace-s0"):
        total = 0
        for g in range(scenario.generations + 1):
            total += by[lineage, g]["oracle_calls"]
            assert by[lineage, g]["oracle_calls_total"] == total
    for g in (1, 2):
        assert by["verified-s0", g]["oracle_calls"] == round(0.5 * n)  # one call per checked structure
        assert by["replace-s0", g]["oracle_calls"] == 0
        assert by["fresh-real-s0", g]["oracle_calls"] >= round(0.25 * n)  # md recipes call the oracle per step
        assert by["verified-s0", g]["n_synthetic"] == n + round(0.5 * n)  # all pass (loose threshold), copies added


def test_structures_the_oracle_fails_on_are_counted_and_dropped_and_the_run_goes_on(tmp_path):
    policies = [{"kind": "verified", "check_fraction": 0.5, "max_force_error": 1000.0, "unchecked": "keep",
                 "add_oracle_labelled": True},
                {"kind": "corrected", "fraction": 0.5, "gamma": 1.0},
                {"kind": "active", "lo": 0.0, "hi": 1000.0, "committee": 2, "max_oracle": 3}]
    data = tiny_scenario_dict(policies=policies, model={"kind": "linear"})
    data["oracle"]["calculator"] = "counting_oracle.FailingOnSynthetic"
    scenario = parse_scenario(data)
    FailingOnSynthetic.calls = 0
    _, rows = run_scenario(tmp_path, scenario)
    by = {(r["lineage"], r["generation"]): r for r in rows}
    n, asked = scenario.synthetic.n_structures, round(0.5 * scenario.synthetic.n_structures)
    for g in (1, 2):
        verified, corrected, active = (by[f"{p}-s0", g] for p in ("verified", "corrected", "active"))
        assert verified["oracle_failed"] == verified["oracle_calls"] == asked  # each failed call counted
        assert verified["policy_rejected"] == asked and verified["policy_oracle_labelled"] == 0
        assert verified["n_synthetic"] == n - asked  # the unchecked ones, kept
        assert corrected["oracle_failed"] == asked and corrected["n_synthetic"] == n - asked
        assert active["oracle_failed"] == active["oracle_calls"] == 3 and active["policy_oracle_labelled"] == 0
        assert (active["policy_kept"], active["policy_rejected"]) == (0, n)  # nothing below lo = 0; failed: rejected
    assert "oracle_failed" not in by["verified-s0", 0]


def test_oracle_checks_return_each_label_at_its_index_and_the_failures_apart():



    oracle = TypeAdapter(OracleSettings).validate_python(
        {"calculator": "counting_oracle.FailsFarOut", "chunk_size": 2})
    executor = SimpleNamespace(map=lambda fn, jobs, cpus=None: [fn(job) for job in jobs])
    ctx = SimpleNamespace(scenario=SimpleNamespace(oracle=oracle, ray=SimpleNamespace(cpus_per_labelling=1)),
                          executor=executor)
    structures = []
    for i in range(7):
        atoms = bulk("Cu", cubic=True)
        atoms.rattle(0.05, seed=i)
        if i in (1, 4, 5):
            atoms.positions[0, 2] = 60.0
        atoms.info["i"] = i
        structures.append(atoms)
    checked, failed, calls = oracle_checks(ctx, 0, "verified-s0", 1, Pool("synthetic", 1, tuple(structures)),
                                           [0, 1, 3, 4, 5, 6])  # chunks of 2 mix labelled and failed ones
    assert failed == {1, 4, 5} and sorted(checked) == [0, 3, 6] and calls == 6
    for i, atoms in checked.items():
        assert atoms.info["i"] == i
        expected = structures[i].copy()
        expected.calc = EMT()
        assert energy_of(atoms) == pytest.approx(expected.get_potential_energy())
