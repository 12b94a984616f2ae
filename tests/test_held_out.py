"""A held-out probe set of another system (``probes.held_out``): made and labelled once per run
like the others, measured on every generation (errors only) and by the teacher, without
changing anything the id and ood probes measure."""
import json

import pytest
import yaml
from ase.calculators.emt import EMT
from conftest import run_scenario
from scenario_factory import tiny_scenario_dict

from collapse_sim import models
from collapse_sim.data.io import read_structures
from collapse_sim.measure.accuracy import label_rmse
from collapse_sim.models.chgnet import CHGNetSettings
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.store import RunStore

#: bcc Cu: the same element in another crystal, which a model trained on fcc Cu can predict
BCC = {"kind": "bulk", "element": "Cu", "crystal": "bcc", "lattice_constant": 2.87, "supercell": [2, 2, 2]}
HELD_OUT = {"n_structures": 6, "system": BCC, "recipes": [{"method": "rattle", "rattle_stdev": 0.05}]}
TEACHER = {"kind": "frozen", "calculator": "ase.calculators.emt.EMT"}


def _data(held_out=None, **extra):
    data = tiny_scenario_dict(model={"kind": "linear"}, policies=[{"kind": "replace"}], generations=1, **extra)
    if held_out is not None:
        data["probes"]["held_out"] = held_out
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same run without and with a held-out set (and EMT, the oracle itself, as teacher)."""
    plain = run_scenario(tmp_path_factory.mktemp("plain"), parse_scenario(_data(teacher=TEACHER)))
    held = run_scenario(tmp_path_factory.mktemp("held"), parse_scenario(_data(HELD_OUT, teacher=TEACHER)))
    return plain, held


def test_held_out_structures_come_from_their_own_system_labelled_by_the_oracle(runs):
    _, (root, _) = runs
    structures = read_structures(RunStore(root).probe_path("held_out"))
    assert len(structures) == HELD_OUT["n_structures"]
    for atoms in structures:
        assert len(atoms) == 16  # a 2x2x2 cubic bcc cell; the system's fcc cells hold another count
        work = atoms.copy()
        work.calc = EMT()
        assert work.get_forces() == pytest.approx(atoms.get_forces(), abs=1e-6)


def test_every_generation_is_measured_on_the_held_out_set(runs):
    _, (root, rows) = runs
    store, settings = RunStore(root), parse_scenario(_data(HELD_OUT)).model
    held_out = read_structures(store.probe_path("held_out"))
    for row in rows:
        model = models.load(settings, store.model_path(row["lineage"], row["generation"]))
        energy, forces = label_rmse(model.predict(held_out), held_out)
        assert row["rmse_forces_held_out"] == pytest.approx(forces, rel=1e-6)
        assert row["rmse_energy_held_out"] == pytest.approx(energy, rel=1e-6)
        assert row["rmse_forces_held_out_Cu"] == pytest.approx(forces, rel=1e-6)
        # the teacher is the oracle: errors against its labels are errors against the truth
        assert row["rmse_forces_held_out_teacher"] == pytest.approx(forces, rel=1e-4)
        assert not [c for c in row if c.endswith("_held_out") and c.startswith(("cknna", "mknn", "dcor", "id_"))]
    info = json.loads(store.reference.info.read_text())
    assert info["teacher_rmse_forces_held_out"] == pytest.approx(0.0, abs=1e-3)
    assert "rmse_forces_held_out" not in info  # the reference model is measured on id and ood only
    assert not list(store.generation(rows[0]["lineage"], 0).dir.glob("*held_out*"))  # no embeddings


def test_a_held_out_set_changes_nothing_else(runs):
    (_, plain_rows), (_, held_rows) = runs
    for plain, held in zip(plain_rows, held_rows, strict=True):
        extra = {c for c in held if "held_out" in c}
        assert extra and set(held) - extra == set(plain)
        for column, value in plain.items():
            if column.endswith("_seconds") or column == "metric_warnings":
                continue
            assert held[column] == (pytest.approx(value) if isinstance(value, float) else value), column


@pytest.mark.parametrize(("held_out", "model", "message"), [
    ({"system": {"kind": "bulk", "element": "Al", "crystal": "fcc", "lattice_constant": 4.05}}, {"kind": "mace"},
     r"probes.held_out.system: model \(mace\) cannot predict Al"),
    ({"system": {"kind": "molecules"}}, {"kind": "linear"}, r"probes.held_out.system.kind: 'molecules'"),
    ({"system": BCC, "recipes": [{"method": "rattle", "molecules": "ood"}]}, {"kind": "linear"},
     r"probes.held_out.recipes.0.molecules"),
])
def test_bad_held_out_settings_name_the_field(held_out, model, message):
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(tiny_scenario_dict(model=model) | {"probes": {**tiny_scenario_dict()["probes"],
                                                                     "held_out": {"n_structures": 4, **held_out}}})


def test_only_pretrained_weights_know_elements_beyond_the_training_data():
    assert {"Mg", "O", "Cu"} <= CHGNetSettings(kind="chgnet").pretrained_species()
    assert CHGNetSettings(kind="chgnet", pretrained=False).pretrained_species() == frozenset()
    with_chgnet = {"kind": "frozen", "model": {"kind": "chgnet"}}
    data = tiny_scenario_dict(model={"kind": "linear"})
    data["probes"]["held_out"] = {"n_structures": 4, "system": {"kind": "bulk", "element": "MgO",
                                                                "crystal": "rocksalt", "lattice_constant": 4.25}}
    with pytest.raises(ScenarioError, match=r"model \(linear\) cannot predict Mg, O"):
        parse_scenario(data | {"teacher": with_chgnet})
    parse_scenario(data | {"teacher": with_chgnet, "model": {"kind": "chgnet"}})
    with pytest.raises(ScenarioError, match=r"teacher \(frozen\) cannot predict Mg, O"):
        parse_scenario(data | {"teacher": {"kind": "frozen", "model": {"kind": "chgnet", "pretrained": False},
                                           "path": __file__}, "model": {"kind": "chgnet"}})


def test_an_oracle_that_cannot_label_the_held_out_system_is_refused_before_the_run(tmp_path, capsys):
    from collapse_sim.cli import main

    data = tiny_scenario_dict(model={"kind": "chgnet"})  # pretrained: knows Fe
    data["probes"]["held_out"] = {"n_structures": 4, "system": {"kind": "bulk", "element": "Fe", "crystal": "bcc",
                                                                "lattice_constant": 2.87}}
    path = tmp_path / "fe.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["run", str(path), "--out", str(tmp_path / "runs"), "--local"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "probes.held_out.system: oracle" in error and "Fe" in error
    assert not (tmp_path / "runs").exists()


def test_converge_labels_only_the_probe_sets_its_rows_report(tmp_path):
    """converge reports id and ood errors: a scenario's held-out set costs it no oracle calls."""
    import collapse_sim

    data = tiny_scenario_dict()
    data["probes"]["held_out"] = HELD_OUT
    result = collapse_sim.converge(data, tmp_path, budgets=[0.5], sizes=[1.0], seeds=1, local=True)
    assert (result.root / "probes" / "id.extxyz").exists()
    assert not (result.root / "probes" / "held_out.extxyz").exists()
    assert set(json.loads((result.root / "probes" / "oracle_calls.json").read_text())) == {"id", "ood"}
