"""Tests for collapse_sim.models.ani (a tiny ANI trained from scratch on EMT-labelled H/C/N/O
molecules from RDKit conformers, and on EMT fcc Cu for the periodic paths; seconds, no Ray)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from pydantic import ValidationError

from collapse_sim import models
from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.measure.accuracy import label_rmse
from collapse_sim.models.ani import ANISettings
from collapse_sim.models.ani.model import ANIModel
from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.samplers import ModelRef
from collapse_sim.samplers.langevin import LangevinSampler, LangevinSettings
from collapse_sim.systems.molecules import DATA, conformer, read_smi

TINY = dict(kind="ani", radial_shells=6, angular_shells=3, angular_sections=4, hidden=[24, 16], batch_size=4,
            lr=1e-2)
EPOCHS = 15


def _label(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    stress = atoms.get_stress() if atoms.pbc.all() else None
    return attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), stress)


def _molecules(n: int, seed: int, rattle: float = 0.05) -> list[Atoms]:
    """EMT-labelled rattled conformers of the first ``n`` molecules of the packaged QM9-like pool
    (H C N O; EMT has no F); ``seed`` picks the rattles."""
    pool = [s for s in read_smi(DATA / "qm9_like.smi") if "F" not in s]
    out = []
    for k in range(n):
        atoms = conformer(pool[k], 0).copy()
        atoms.rattle(rattle, seed=seed + k)
        out.append(_label(atoms))
    return out


def _cu(seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)  # 32 atoms, the bulk system's cell
    atoms.rattle(0.05, seed=seed)
    return _label(atoms)


@pytest.fixture(scope="module")
def data() -> dict[str, list[Atoms]]:
    # held out: other rattles of the training molecules (in distribution, as the loop's probes)
    return {"train": _molecules(12, 0) + _molecules(12, 500), "test": _molecules(6, 1000)}


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    log = tmp_path_factory.mktemp("ani") / "train.jsonl"
    model = ANIModel(ANISettings(**TINY, epochs=EPOCHS), threads=2).fit(data["train"], seed=0, log_path=log)
    return model, log


# ------------------------------------------------------------------------------------ settings
def test_settings_validate_through_the_model_registry():
    s = models.parse_settings({"kind": "ani"})
    assert isinstance(s, ANISettings)
    assert (s.radial_cutoff, s.angular_cutoff, s.hidden, s.activation) == (5.2, 3.5, [64, 32], "celu")
    assert ANISettings.model_validate(s.model_dump()) == s
    bad = [
        dict(epochs=-1),
        dict(hidden=[]),
        dict(hidden=[32, 0]),
        dict(radial_cutoff=3.0, angular_cutoff=3.5),
        dict(radial_cutoff=3.5, angular_cutoff=3.5),  # torchani needs angular < radial
        dict(activation="relu"),
        dict(valid_fraction=1.0),
        dict(energy_weight=0, forces_weight=0),
        dict(dtype="float16"),
        dict(learning_rate=0.1),  # extra="forbid"
    ]
    for kwargs in bad:
        with pytest.raises(ValidationError) as err:
            models.parse_settings({"kind": "ani", **kwargs})
        assert err.value.error_count() == 1, (kwargs, err.value)
    with pytest.raises(ValidationError, match="angular_cutoff=3.5 must be below radial_cutoff=3.0"):
        models.parse_settings({"kind": "ani", "radial_cutoff": 3.0})


# ------------------------------------------------------------------------------------ fit
def test_fit_logs_one_line_per_epoch_and_reduces_force_error(data, trained):
    model, log = trained
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in lines] == list(range(1, EPOCHS + 1)) and lines == model.history
    for r in lines:
        assert {"train_loss", "lr", "valid_loss", "valid_rmse_e_meV_per_atom", "valid_rmse_f_meV_per_A",
                "seconds"} <= set(r)
    assert model.fit_info["elements"] == ["H", "C", "N", "O"]
    assert model.fit_info["n_train"] + model.fit_info["n_valid"] == 24 and model.fit_info["n_valid"] >= 1
    untrained = ANIModel(ANISettings(**TINY, epochs=0)).fit(data["train"], seed=0)
    _, f_untrained = label_rmse(untrained.predict(data["test"]), data["test"])
    _, f_trained = label_rmse(model.predict(data["test"]), data["test"])
    assert f_trained < 0.7 * f_untrained, (f_trained, f_untrained)


# ------------------------------------------------------------------------------------ predict
def test_periodic_cu_forces_and_stress(tmp_path):
    train = [_cu(i) for i in range(6)]
    model = ANIModel(ANISettings(**TINY, epochs=2, dtype="float64", valid_fraction=0.0)).fit(train, seed=0)
    small = bulk("Cu", "fcc", a=3.5, cubic=True)  # 4 atoms, cell shorter than the cutoff: images of itself
    small.set_cell(small.cell[:] @ (np.eye(3) + [[0, 0.04, 0], [0, 0, 0], [0.03, 0, 0]]), scale_atoms=True)
    small.rattle(0.05, seed=1)
    for atoms in (small, _cu(10)):
        [p] = model.predict([atoms])
        probe = atoms.copy()
        probe.calc = model.calculator()
        np.testing.assert_allclose(calculate_numerical_stress(probe, eps=1e-6), p.calc.results["stress"],
                                   rtol=0, atol=1e-7)
        np.testing.assert_allclose(calculate_numerical_forces(probe, eps=1e-5)[:3], forces_of(p)[:3],
                                   rtol=0, atol=1e-6)
    # a periodic cell and a free molecule in one batch: each gets its own labels
    [cell, molecule] = model.predict([small, Atoms("Cu2", positions=[[0, 0, 0], [2.4, 0, 0]])])
    assert "stress" in cell.calc.results and "stress" not in molecule.calc.results
    assert np.allclose(forces_of(molecule).sum(axis=0), 0, atol=1e-10)


def test_a_file_of_another_format_is_refused(tmp_path):
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a collapse_sim ANI model"):
        ANIModel.load(tmp_path / "other.pt", ANISettings(**TINY))


def test_fit_leaves_no_global_state(data):
    dtype, threads = torch.get_default_dtype(), torch.get_num_threads()
    rng_state = torch.get_rng_state()
    model = ANIModel(ANISettings(**TINY, epochs=1, dtype="float64"), threads=2).fit(data["train"][:6], seed=7)
    assert all(t.dtype == torch.float64 for t in model.network.state_dict().values() if t.is_floating_point())
    assert torch.get_default_dtype() == dtype and torch.get_num_threads() == threads
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert not torch.are_deterministic_algorithms_enabled()


def test_batched_potential_rebuilds_a_replicas_pairs_only_once_it_moved_half_the_skin(trained, data):
    model, _ = trained
    molecules = data["test"][:3]
    forces = model.batched_potential(skin=1.0).bind(molecules)
    positions = np.concatenate([a.positions for a in molecules])
    forces(positions)
    assert forces.rebuilds.tolist() == [1, 1, 1]
    n0 = len(molecules[0])
    moved = positions.copy()
    moved[:n0] += 0.3  # replica 0 moved 0.52 Å > skin/2
    moved[n0] += [0.2, 0.0, 0.0]  # one atom of replica 1 moved 0.2 Å
    _, batched = forces(moved)
    assert forces.rebuilds.tolist() == [2, 1, 1]
    labelled = model.predict([Atoms(a.numbers, moved[lo:lo + len(a)]) for a, lo in
                              zip(molecules, np.cumsum([0] + [len(a) for a in molecules]))])
    np.testing.assert_allclose(batched, np.concatenate([forces_of(a) for a in labelled]), rtol=0, atol=2e-5)



# ------------------------------------------------------------------------------------ embed
# ------------------------------------------------------------------------------------ elements
def test_system_elements_missing_from_training_are_represented_and_unknown_ones_refused(data):
    water_only = [a for a in _molecules(40, 0) if set(a.get_chemical_symbols()) <= {"H", "C", "O"}][:6]
    model = ANIModel(ANISettings(**TINY, epochs=1)).fit(water_only, seed=0, species=["H", "C", "N", "O"])
    assert model.fit_info["elements"] == ["H", "C", "N", "O"] and model.fit_info["E0s"]["N"] == 0.0
    with_n = next(a for a in data["test"] if "N" in a.get_chemical_symbols())
    [p] = model.predict([with_n])
    assert np.isfinite(energy_of(p)) and np.all(np.isfinite(forces_of(p)))
    assert model.embed([with_n]).shape == (1, 16)
    with pytest.raises(ValueError, match=r"structure 1 has elements \['Cu', 'S'\] the model was not trained on"):
        model.predict([with_n, Atoms("CuS", positions=[[0, 0, 0], [2.2, 0, 0]])])


# ------------------------------------------------------------------------------------ sampling
def test_langevin_sampling_with_the_batched_engine(trained, data, tmp_path):
    model, _ = trained
    path = tmp_path / "model.pt"
    model.save(path)
    settings = LangevinSettings(kind="langevin", steps=4, equilibration_steps=2, interval=2, replicas=2,
                                replicas_per_task=2, engine="batched")
    result = LangevinSampler(settings, cpus_per_task=1).sample(ModelRef(model.settings, path), data["test"][:2],
                                                               n=10, seed=3, executor=LocalExecutor())
    assert result.failures == 0 and len(result.structures) == 4, result  # 2 replicas x 2 kept frames
    for atoms in result.structures:
        assert np.all(np.isfinite(atoms.positions))


def test_a_step_budget_sets_the_number_of_passes(data):
    """8 training structures (7 + 1 split) in batches of 4: 2 steps per pass; 5 steps -> 3 passes."""
    model = ANIModel(ANISettings(**TINY, epochs=40, steps=5), threads=2).fit(data["train"][:8], seed=0)
    assert (model.fit_info["epochs"], model.fit_info["optimizer_steps"], len(model.history)) == (3, 6, 3)
