"""The active policy in a real (tiny, linear-model) run: the committee's window decides, the
oracle labels exactly the structures asked for, and the row's counts and oracle calls agree."""
import math

from conftest import run_scenario
from counting_oracle import CountingEMT
from scenario_factory import tiny_scenario_dict

from collapse_sim.data.io import read_structures
from collapse_sim.data.structures import ORACLE_CHECKED
from collapse_sim.policies import active
from collapse_sim.scenario import parse_scenario
from collapse_sim.store import RunStore

# lo/hi chosen from a pilot run of this scenario: generation 2's deviations lie between 0.060 and
# 0.076 eV/Å, so this window trusts some, asks about some and discards some of them
ACTIVE = {"kind": "active", "lo": 0.065, "hi": 0.07, "committee": 3, "max_oracle": 3}


def test_active_oracle_calls_are_the_in_window_structures_labelled(tmp_path, monkeypatch):
    windows = []
    original = active.Active.request

    def spy(self, history, synthetic, rng, predict_with=None):
        request = original(self, history, synthetic, rng, predict_with)
        windows.append(request.note)
        return request

    monkeypatch.setattr(active.Active, "request", spy)
    data = tiny_scenario_dict(policies=[ACTIVE], model={"kind": "linear"}, metrics={"enabled": False},
                              generations=3, probes=None)
    data["oracle"]["calculator"] = "counting_oracle.CountingEMT"
    scenario = parse_scenario(data)
    CountingEMT.calls = 0
    root, rows = run_scenario(tmp_path, scenario)
    rows = {r["generation"]: r for r in rows}
    n = scenario.synthetic.n_structures
    assert [w.generation for w in windows] == [0, 1, 2]
    assert CountingEMT.calls == sum(r["oracle_calls"] for r in rows.values())  # metrics off: no probes, no reference
    kinds = {"trusted": 0, "discarded": 0}
    for g in (1, 2, 3):
        w, row = windows[g - 1], rows[g]
        if g == 1:  # one model: no deviation, a random max_oracle structures asked
            assert all(math.isnan(d) for d in w.deviations) and len(w.requested) == ACTIVE["max_oracle"]
        else:
            classes = active.classify(w.deviations, ACTIVE["lo"], ACTIVE["hi"])
            assert w.requested == active.select_candidates(w.deviations, classes, ACTIVE["max_oracle"])
            kinds["trusted"] += classes.count(active.TRUSTED)
            kinds["discarded"] += classes.count(active.DISCARDED)
        assert row["oracle_calls"] == row["policy_oracle_labelled"] == len(w.requested)  # one call per label
        assert row["policy_kept"] + row["policy_oracle_labelled"] + row["policy_rejected"] == n
        assert row["oracle_calls_total"] == rows[g - 1]["oracle_calls_total"] + row["oracle_calls"]
        assert row["n_train"] == rows[g - 1]["n_train"] + row["policy_kept"] + row["policy_oracle_labelled"]
        train = read_structures(RunStore(root).generation("active-s0", g).train)
        labelled = sorted(a.info["generation"] for a in train if ORACLE_CHECKED in a.info)
        assert labelled.count(g - 1) == len(w.requested)
    # the window split the pools
    assert kinds["trusted"] and kinds["discarded"], [[round(d, 4) for d in w.deviations] for w in windows]
