"""Oracle-call accounting: the counts in the metrics rows and the reference's info.json add up
to the evaluations the oracle calculator actually made (counted by the calculator itself)."""
import json

from conftest import run_scenario
from counting_oracle import CountingEMT
from scenario_factory import tiny_scenario_dict

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
