"""A teacher measured against: the scenario's ``teacher`` labels and embeds the probe structures
once per run, and every generation's errors against those labels and alignment with those
embeddings are columns; the reference model can learn from ``reference_oracle`` instead."""
import json
import os
import shutil

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from conftest import run_scenario
from scenario_factory import tiny_scenario_dict

from collapse_sim import models
from collapse_sim.data.io import read_structures
from collapse_sim.data.structures import ORACLE_CHECKED, energy_of
from collapse_sim.measure.accuracy import label_rmse
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.store import RunStore

ASAP = {"calculator": "ase.calculators.emt.EMT", "kwargs": {"asap_cutoff": True}, "chunk_size": 6}
TRUTH = {"calculator": "ase.calculators.emt.EMT", "chunk_size": 6}


def _scenario(**extra):
    settings = dict(oracle=ASAP, reference_oracle=TRUTH, model={"kind": "linear"}, policies=[{"kind": "replace"}],
                    generations=1, reference_model={"n_structures": 16, "labels": "reference_oracle"})
    return parse_scenario(tiny_scenario_dict(**(settings | extra)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A run, and the same run with the first run's generation 0 as its teacher."""
    first, first_rows = run_scenario(tmp_path_factory.mktemp("a"), _scenario())
    path = RunStore(first).model_path("replace-s0", 0)
    taught = _scenario(teacher={"kind": "frozen", "model": {"kind": "linear"}, "path": str(path)})
    second, second_rows = run_scenario(tmp_path_factory.mktemp("b"), taught)
    return (first, first_rows), (second, second_rows)


def _assert_truth_labels(structures):
    """The structures carry the truth's (plain EMT's) labels, which differ from the lineages'
    oracle's (EMT with ASAP's cutoff) on at least one of them."""
    plain, asap, differ = EMT(), EMT(asap_cutoff=True), 0
    assert structures
    for atoms in structures:
        work = atoms.copy()
        work.calc = plain
        assert energy_of(atoms) == pytest.approx(work.get_potential_energy(), abs=1e-5)
        work.calc = asap
        differ += abs(work.get_potential_energy() - energy_of(atoms)) > 1e-3
    assert differ


def _row(rows, generation):
    (row,) = [r for r in rows if r["generation"] == generation]
    return row


def test_a_student_identical_to_its_teacher_reads_zero_error_and_full_alignment(runs):
    (_, first_rows), (second, rows) = runs
    gen0 = _row(rows, 0)  # the same data and seed: the same linear model as the teacher
    for probe in ("id", "ood"):
        assert gen0[f"rmse_forces_{probe}_teacher"] == pytest.approx(0.0, abs=1e-4)  # meV: extxyz round trip
        assert gen0[f"rmse_energy_{probe}_teacher"] == pytest.approx(0.0, abs=1e-4)  # meV: extxyz round trip
        assert gen0[f"cknna_teacher_{probe}"] == pytest.approx(1.0, abs=1e-9)
        assert gen0[f"rmse_forces_{probe}"] == pytest.approx(_row(first_rows, 0)[f"rmse_forces_{probe}"])
    store, settings = RunStore(second), parse_scenario(tiny_scenario_dict(model={"kind": "linear"})).model
    student = models.load(settings, store.model_path("replace-s0", 1))
    for probe in ("id", "ood"):  # a later generation: its predictions against the saved teacher labels
        predicted = student.predict(read_structures(store.probe_path(probe)))
        energy, forces = label_rmse(predicted, read_structures(store.reference.teacher_labels(probe)))
        assert _row(rows, 1)[f"rmse_forces_{probe}_teacher"] == pytest.approx(forces, rel=1e-6, abs=1e-6)
        assert _row(rows, 1)[f"rmse_energy_{probe}_teacher"] == pytest.approx(energy, rel=1e-6, abs=1e-6)
    info = json.loads(RunStore(second).reference.info.read_text())
    for probe in ("id", "ood"):  # the teacher's own error against the truth is the teacher model's error
        assert info[f"teacher_rmse_forces_{probe}"] == pytest.approx(_row(first_rows, 0)[f"rmse_forces_{probe}"])
    assert info["teacher"].startswith("linear from ")


def test_runs_without_a_teacher_have_no_teacher_columns(runs):
    (first, rows), _ = runs
    assert not [c for row in rows for c in row if "teacher" in c]
    assert not list(RunStore(first).reference_dir.glob("teacher*"))


def test_the_reference_learns_from_the_reference_oracle(runs):
    (first, _), _ = runs
    store = RunStore(first)
    _assert_truth_labels(read_structures(store.reference.train))
    info = json.loads(store.reference.info.read_text())
    assert info["reference_labels"] == info["probe_oracle"] == "ase.calculators.emt.EMT"


def test_teacher_labels_are_saved_beside_the_probes(runs):
    _, (second, _) = runs
    store = RunStore(second)
    for probe in ("id", "ood"):
        probes = read_structures(store.probe_path(probe))
        taught = read_structures(store.reference.teacher_labels(probe))
        assert [a.positions.tolist() for a in probes] == [a.positions.tolist() for a in taught]
        assert np.load(store.reference.teacher_embeddings(probe)).shape[0] == len(probes)


@pytest.mark.parametrize(("change", "message"), [
    ({"reference_model": {"labels": "reference_oracle"}},
     r"reference_model.labels: 'reference_oracle' needs a reference_oracle"),
    ({"teacher": {"kind": "frozen", "calculator": "ase.calculators.emt.EMT"}, "metrics": {"enabled": False},
      "probes": None}, r"teacher: .*metrics.enabled is false"),
    ({"teacher": {"kind": "mace"}}, r"teacher"),
])
def test_bad_teacher_settings_name_the_field(change, message):
    data = tiny_scenario_dict()
    data.update(change)
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(data)


def test_fresh_data_from_the_reference_oracle(tmp_path):
    scenario = _scenario(policies=[{"kind": "fresh-real", "name": "fresh-truth", "real_fraction": 0.5,
                                    "labeller": "reference_oracle"}])
    root, _ = run_scenario(tmp_path, scenario)
    fresh = read_structures(RunStore(root).generation("fresh-truth-s0", 1).fresh_real)
    _assert_truth_labels(fresh)
    with pytest.raises(ScenarioError, match=r"labeller: 'reference_oracle' needs a reference_oracle"):
        parse_scenario(tiny_scenario_dict(policies=[{"kind": "fresh-real", "real_fraction": 0.5,
                                                     "labeller": "reference_oracle"}]))


def test_a_teacher_verifier_checks_with_the_teachers_labels_at_no_oracle_call(tmp_path):
    """verified with ``verifier: teacher``: the checked copies carry the teacher's (plain EMT's)
    labels, not the oracle's, and cost no oracle call; checked by the oracle, the same policy
    pays one call per structure and trains on the oracle's labels."""
    check = {"kind": "verified", "max_force_error": 10.0, "add_oracle_labelled": True}
    scenario = _scenario(teacher={"kind": "frozen", "calculator": "ase.calculators.emt.EMT"},
                         policies=[check | {"name": "by-teacher", "verifier": "teacher"},
                                   check | {"name": "by-oracle"}])
    root, rows = run_scenario(tmp_path, scenario)
    store = RunStore(root)

    def checked(lineage):
        return [a for a in read_structures(store.generation(lineage, 1).train) if ORACLE_CHECKED in a.info]

    by_teacher, by_oracle = checked("by-teacher-s0"), checked("by-oracle-s0")
    assert len(by_teacher) == len(by_oracle) == scenario.synthetic.n_structures
    _assert_truth_labels(by_teacher)
    asap = EMT(asap_cutoff=True)
    for atoms in by_oracle:
        work = atoms.copy()
        work.calc = asap
        assert energy_of(atoms) == pytest.approx(work.get_potential_energy(), abs=1e-5)
    calls = {r["lineage"]: r["oracle_calls"] for r in rows if r["generation"] == 1}
    assert calls == {"by-teacher-s0": 0, "by-oracle-s0": scenario.synthetic.n_structures}
    with pytest.raises(ScenarioError, match=r"verifier: 'teacher' needs a teacher"):
        parse_scenario(tiny_scenario_dict(policies=[check | {"verifier": "teacher"}]))


def test_the_teacher_is_built_once_per_process_and_anew_for_other_settings():
    """``models.teacher`` loads a scenario's teacher once (every verified generation reuses it);
    a scenario with another teacher gets that teacher, not the cached one."""
    plain = _scenario(teacher={"kind": "frozen", "calculator": "ase.calculators.emt.EMT"})
    other = _scenario(teacher={"kind": "frozen", "calculator": "ase.calculators.emt.EMT",
                               "kwargs": {"asap_cutoff": True}})
    first = models.teacher(plain)
    assert models.teacher(plain) is first
    second = models.teacher(other)
    assert second is not first
    cell = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 1, 1)
    cell.rattle(0.05, seed=1)
    energies = [energy_of(m.predict([cell])[0]) for m in (first, second)]
    assert energies[0] != pytest.approx(energies[1], abs=1e-6)  # the ASAP cutoff changes EMT's energy


def test_a_teacher_file_rewritten_in_place_is_read_again(runs, tmp_path):
    """A frozen teacher read from a file: the same file gives the cached teacher, a file rewritten
    at the same path (another model) gives a teacher with the new weights."""
    (first, _), _ = runs
    store = RunStore(first)
    path = tmp_path / "teacher.model"
    shutil.copyfile(store.model_path("replace-s0", 0), path)
    scenario = _scenario(teacher={"kind": "frozen", "model": {"kind": "linear"}, "path": str(path)})
    before = models.teacher(scenario)
    assert models.teacher(scenario) is before
    shutil.copyfile(store.model_path("replace-s0", 1), path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    after = models.teacher(scenario)
    assert after is not before
    assert after.fingerprint() != before.fingerprint()
