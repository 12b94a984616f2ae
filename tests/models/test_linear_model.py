"""The linear potential, its exact-truth oracle, and the Gaussian 'model' (unit level)."""
import json

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models import load as load_model
from collapse_sim.models import make as new_model
from collapse_sim.models import parse_settings as parse_model_settings
from collapse_sim.models.gaussian import GaussianModel, GaussianSettings
from collapse_sim.models.linear import LinearModel, LinearSettings, pair_list
from collapse_sim.oracles.linear import LinearTruth
from collapse_sim.systems.gaussian import sample_atoms, sample_values

SETTINGS = LinearSettings(kind="linear", n_basis=4, r_cut=5.0, r_min=2.0)
W_STAR = [-3.5, 0.08, -0.04, 0.02, 0.01]


def cells(n=12, seed=0, supercell=(1, 1, 1)):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(supercell)
        eps = rng.uniform(-0.08, 0.08, (3, 3))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.2, atoms.positions.shape)
        out.append(atoms)
    return out


def truth_labelled(structures):
    calc = LinearTruth(W_STAR, n_basis=4, r_cut=5.0, r_min=2.0)
    out = []
    for atoms in structures:
        work = atoms.copy()
        work.calc = calc
        out.append(attach_labels(atoms, work.get_potential_energy(), work.get_forces(), work.get_stress()))
    return out


def cluster():
    rng = np.random.default_rng(3)
    return Atoms("Cu5", positions=rng.uniform(0, 4.0, (5, 3)) + np.arange(5)[:, None] * 0.7, pbc=False)


@pytest.mark.parametrize("atoms", [cells(1)[0], cells(1, supercell=(2, 1, 1))[0], cluster()],
                         ids=["cell", "supercell", "cluster"])
def test_pair_list_matches_ase(atoms):
    for r_cut in (3.0, 5.0):
        ours, ase = pair_list(atoms, r_cut), neighbor_list("ijdD", atoms, r_cut)
        key = lambda t: sorted(zip(t[0].tolist(), t[1].tolist(), np.round(t[2], 9).tolist()))
        assert key(ours) == key(ase)


def test_stress_is_strain_derivative():
    atoms = cells(1)[0]
    model = LinearModel(SETTINGS)
    model.weights = np.array(W_STAR)
    stress = model.predict([atoms])[0].calc.results["stress"]
    h, full = 1e-6, np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = []
            for sign in (1, -1):
                strained = atoms.copy()
                eps = np.eye(3)
                eps[a, b] += sign * h
                strained.set_cell(atoms.cell.array @ eps, scale_atoms=True)
                e.append(energy_of(model.predict([strained])[0]))
            full[a, b] = (e[0] - e[1]) / (2 * h) / atoms.get_volume()
    full = 0.5 * (full + full.T)
    voigt = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    np.testing.assert_allclose(stress, voigt, atol=1e-7)


def test_calculator_agrees_with_predict_and_truth_oracle():
    atoms = cells(1)[0]
    model = LinearModel(SETTINGS)
    model.weights = np.array(W_STAR)
    work = atoms.copy()
    work.calc = model.calculator()
    predicted = model.predict([atoms])[0]
    assert work.get_potential_energy() == pytest.approx(energy_of(predicted), abs=1e-12)
    np.testing.assert_allclose(work.get_forces(), forces_of(predicted), atol=1e-12)
    truth = truth_labelled([atoms])[0]
    assert energy_of(truth) == pytest.approx(energy_of(predicted), abs=1e-12)
    assert model.basis.features(atoms) @ np.array(W_STAR) == pytest.approx(energy_of(truth), abs=1e-12)


def test_fit_recovers_noiseless_truth_and_ridge_shrinks(tmp_path):
    train = truth_labelled(cells(20))
    model = LinearModel(SETTINGS).fit(train, seed=0, log_path=tmp_path / "log.jsonl")
    np.testing.assert_allclose(model.weights, W_STAR, atol=1e-6)
    assert json.loads((tmp_path / "log.jsonl").read_text())["n_train"] == 20
    ridge = LinearModel(SETTINGS.model_copy(update={"alpha": 10.0})).fit(train, seed=0)
    assert np.linalg.norm(ridge.weights) < np.linalg.norm(model.weights)
    assert model.embed(train[:3]).shape == (3, 5)
    assert model.summary()["linear_weight_norm"] == pytest.approx(np.linalg.norm(W_STAR), rel=1e-6)


def test_seed_is_unused_and_a_file_of_another_basis_is_refused(tmp_path):
    train = truth_labelled(cells(15))
    a = new_model(SETTINGS).fit(train, seed=1)
    b = new_model(SETTINGS).fit(train, seed=2)  # seed unused: identical weights
    assert a.fingerprint() == b.fingerprint()
    assert LinearModel(SETTINGS).fit(train[:-1], seed=1).fingerprint() != a.fingerprint()
    path = tmp_path / "model.model"
    a.save(path)
    assert not list(tmp_path.glob(".*.tmp"))
    np.testing.assert_array_equal(load_model(SETTINGS, path).weights, a.weights)  # exact float round trip
    with pytest.raises(ValueError, match="basis"):
        load_model(SETTINGS.model_copy(update={"n_basis": 3}), path)



def test_linear_model_drives_langevin_md(tmp_path):
    from collapse_sim.samplers import ModelRef
    from collapse_sim.samplers.langevin import LangevinSettings, run_replica

    # a repulsive pair term keeps atoms apart; an untrained linear fit may be attractive
    model = LinearModel(SETTINGS)
    model.weights = np.array([-3.5, 0.5, 0.1, 0.0, 0.0])
    model.save(tmp_path / "m.model")
    settings = LangevinSettings(kind="langevin", steps=10, equilibration_steps=2, interval=2, temperature_K=300)
    result = run_replica(ModelRef(SETTINGS, tmp_path / "m.model"), cells(1)[0], settings, seed=0)
    assert len(result["frames"]) == 5 and not result["exploded"]


def test_model_settings_union():
    assert parse_model_settings({}).kind == "mace"
    assert parse_model_settings({"kind": "linear", "alpha": 0.5}).alpha == 0.5
    assert parse_model_settings({"kind": "gaussian"}).estimator == "mle"
    with pytest.raises(ValueError):
        parse_model_settings({"kind": "linear", "r_min": 6.0, "r_cut": 5.0})


def test_truth_oracle_rejects_wrong_weight_count():
    with pytest.raises(ValueError, match="weights"):
        LinearTruth([1.0, 2.0], n_basis=4)
    with pytest.raises(ValueError, match="unknown"):
        LinearTruth(W_STAR, n_basis=4, colour="red")


@pytest.mark.parametrize("estimator, ddof", [("mle", 0), ("unbiased", 1)])
def test_gaussian_model(tmp_path, estimator, ddof):
    x = np.random.default_rng(0).normal(2.0, 3.0, 25)
    train = [attach_labels(sample_atoms(v), 0.0, np.zeros((1, 3))) for v in x]
    model = GaussianModel(GaussianSettings(kind="gaussian", estimator=estimator)).fit(train, seed=0)
    assert model.summary() == {"gauss_mean": pytest.approx(x.mean()), "gauss_var": pytest.approx(x.var(ddof=ddof))}
    draws = sample_values(model.sample(5, np.random.default_rng(1)))
    np.testing.assert_array_equal(draws, sample_values(model.sample(5, np.random.default_rng(1))))
    model.save(tmp_path / "g.model")
    loaded = load_model(model.settings, tmp_path / "g.model")
    assert loaded.summary() == model.summary() and loaded.fingerprint() == model.fingerprint()
    assert all(energy_of(a) == 0.0 for a in loaded.predict(train[:3]))
    np.testing.assert_allclose(sample_values(train), x, atol=0)  # the value lives in positions[0, 0]
