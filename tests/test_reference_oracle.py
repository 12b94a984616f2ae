"""reference_oracle: the probe sets (and only they) are made and labelled by it; the teacher
(CHGNet) labels a Cu cell offline; a missing teacher says how to install it."""
import json
import sys

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from scenario_factory import tiny_scenario_dict

from collapse_sim.data.io import read_structures
from collapse_sim.data.structures import energy_of, forces_of
from collapse_sim.loop import RunContext, run
from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.store import RunStore

REFERENCE = {"calculator": "ase.calculators.emt.EMT", "kwargs": {"asap_cutoff": True}, "chunk_size": 6}


def test_reference_oracle_labels_the_probes_and_only_them(tmp_path):
    scenario = parse_scenario(tiny_scenario_dict(reference_oracle=REFERENCE, policies=[{"kind": "replace"}],
                                                 model={"kind": "linear"}, generations=1))
    root = tmp_path / scenario.name
    root.mkdir()
    store = RunStore(root)
    store.write_scenario(scenario.resolved_yaml())
    run(RunContext(scenario, root, LocalExecutor()), progress=lambda m: None)
    plain, asap = EMT(), EMT(asap_cutoff=True)
    differ = 0
    for name in ("id", "ood"):
        for atoms in read_structures(store.probe_path(name)):
            work = atoms.copy()
            work.calc = asap
            assert energy_of(atoms) == pytest.approx(work.get_potential_energy(), abs=1e-5)
            assert np.allclose(forces_of(atoms), work.get_forces(), atol=1e-5)
            work.calc = plain
            differ += abs(work.get_potential_energy() - energy_of(atoms)) > 1e-3
    assert differ  # the two calculators do disagree on these structures: the test tells them apart
    for atoms in read_structures(store.generation("replace-s0", 0).train):  # the lineages' data: the oracle's
        work = atoms.copy()
        work.calc = plain
        assert energy_of(atoms) == pytest.approx(work.get_potential_energy(), abs=1e-5)
    info = json.loads(store.reference.info.read_text())
    assert info["probe_oracle"] == "ase.calculators.emt.EMT" and info["oracle"] == "ase.calculators.emt.EMT"
    assert parse_scenario(tiny_scenario_dict()).reference_oracle is None


def test_missing_teacher_says_how_to_install_it(monkeypatch):
    for module in ("chgnet", "chgnet.model", "chgnet.model.dynamics"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ScenarioError,
                       match=r"oracle.calculator: .*install it with: pip install 'collapse-sim\[teacher\]'"):
        parse_scenario(tiny_scenario_dict(oracle={"calculator": "chgnet.model.dynamics.CHGNetCalculator"}))


def test_chgnet_labels_a_cu_cell_offline(monkeypatch):
    pytest.importorskip("chgnet")
    from collapse_sim.oracles import make
    from collapse_sim.oracles.ase_oracle import ASEOracleSettings

    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):  # nothing to fetch: weights in the wheel
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    oracle = make(ASEOracleSettings(calculator="chgnet.model.dynamics.CHGNetCalculator", kwargs={"use_device": "cpu"}))
    cell = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    cell.rattle(0.05, seed=0)
    (labelled,) = oracle.label([cell])
    assert np.isfinite(energy_of(labelled)) and energy_of(labelled) / len(cell) == pytest.approx(-4.0, abs=0.5)
    assert forces_of(labelled).shape == (32, 3) and 0 < np.abs(forces_of(labelled)).max() < 5
    assert labelled.calc.results["stress"].shape == (6,)
