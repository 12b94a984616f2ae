"""The Model protocol and its capabilities, tested once for every registered model kind
(built-ins and installed plugins): a kind passes these or it is not a model. Atomistic kinds
train on EMT-labelled Cu; a non-atomistic kind (gaussian) gets the checks that apply to it.
Kind-specific behaviour stays in each kind's own test module."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from geometry import numeric_forces, random_rotation

from collapse_sim import models
from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models.base import BATCHED_FORCES, FEATURES, PRETRAINED, TRAINABLE, capabilities

#: fast settings per kind; a kind not listed is built from ``{"kind": name}`` (its defaults)
EXAMPLES = {
    "mace": {"kind": "mace", "hidden_irreps": "8x0e+8x1o", "MLP_irreps": "8x0e", "radial_MLP": [16, 16],
             "r_max": 4.0, "epochs": 2, "batch_size": 5},
    "ani": {"kind": "ani", "radial_shells": 6, "angular_shells": 3, "angular_sections": 4, "hidden": [16, 8],
            "batch_size": 4, "epochs": 2},
    "linear": {"kind": "linear"},
    "chgnet": {"kind": "chgnet", "epochs": 1, "batch_size": 4, "valid_fraction": 0.0},
    "frozen": {"kind": "frozen", "calculator": "ase.calculators.emt.EMT"},
}
#: what a kind does with an element it was not fitted with, as its docs say: "refuses" (ValueError
#: naming the element) or "predicts" (finite labels). A kind not listed may do either, refusing in one line.
OUTSIDE_SPECIES = {"mace": "refuses", "ani": "refuses", "linear": "predicts"}

# the example plugin (tests/plugin_example) joins the suite as an installed plugin's kind would
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugin_example"))
import collapse_sim_example_plugin.morse  # noqa: E402, F401

KINDS = models.KINDS.kinds
ATOMISTIC = [k for k in KINDS if models.KINDS.settings(k).atomistic]


def _settings(kind: str, **overrides):
    """The kind's example settings; float64 where the kind has a ``dtype`` setting."""
    data = dict(EXAMPLES.get(kind, {"kind": kind}))
    if "dtype" in models.KINDS.settings(kind).model_fields:
        data["dtype"] = "float64"
    return models.parse_settings(data | overrides)


def _float64(settings) -> bool:
    return getattr(settings, "dtype", None) == "float64"


def _label(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress())


def _cu(seed: int, repeat=(2, 1, 1), a: float = 3.6) -> Atoms:
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    atoms.rattle(0.06, seed=seed)
    return atoms


def _cluster(seed: int) -> Atoms:
    """A free 6-atom Cu cluster (no cell): rotations and translations are symmetries."""
    atoms = Atoms("Cu6", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5], [2.5, 2.5, 0], [1.2, 1.2, 2.2]])
    atoms.rattle(0.05, seed=seed)
    return atoms


def _sheared(seed: int) -> Atoms:
    atoms = _cu(seed, repeat=(1, 1, 1), a=3.7)  # 4 atoms, cell shorter than any cutoff: images of itself
    atoms.set_cell(atoms.cell[:] @ (np.eye(3) + [[0, 0.05, 0], [0, 0, 0], [0.03, 0, 0]]), scale_atoms=True)
    return atoms


def _samples(kind: str, n: int, seed: int) -> list[Atoms]:
    """Structures of the kind's system: Cu (EMT-labelled) or a non-atomistic kind's samples."""
    if kind in ATOMISTIC:
        return [_label(_cu(seed + i, a=3.55 + 0.02 * (i % 5))) for i in range(n)]
    from collapse_sim.systems.gaussian import sample_atoms

    rng = np.random.default_rng(seed)
    return [attach_labels(sample_atoms(v), 0.0, np.zeros((1, 3))) for v in rng.normal(1.0, 2.0, size=n)]


def _probes(kind: str) -> list[Atoms]:
    if kind in ATOMISTIC:
        return [_cu(100), _sheared(101), _cluster(102)]
    return [a.copy() for a in _samples(kind, 3, 100)]


def _fit(kind: str, seed: int = 0):
    return models.make(_settings(kind), threads=1).fit(_samples(kind, 10, 0), seed=seed, species=["Cu"])


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(kind: str):
        if kind not in cache:
            cache[kind] = _fit(kind)
        return cache[kind]

    return get


def _labels(model, structures):
    labelled = model.predict(structures)
    return [energy_of(a) for a in labelled], [forces_of(a) for a in labelled]


# ------------------------------------------------------------------------------------ every kind
def test_every_kind_declares_its_capabilities():
    for kind in KINDS:
        declared = capabilities(models.KINDS.implementation(kind))
        assert isinstance(getattr(models.KINDS.implementation(kind), "capabilities", None), frozenset), kind
        assert declared <= {"trainable", "pretrained", "frozen", "batched_forces", "features", "ensemble"}, kind
    assert capabilities(object()) == frozenset()


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_round_trip(kind, fitted, tmp_path):
    model = fitted(kind)
    path = tmp_path / "sub" / "model"
    model.save(path)
    loaded = models.load(model.settings, path, threads=model.threads)
    assert loaded.fingerprint() == model.fingerprint() and loaded.fingerprint().startswith("sha256:")
    probes = _probes(kind)
    (e0, f0), (e1, f1) = _labels(model, probes), _labels(loaded, probes)
    assert e0 == e1 and all(np.array_equal(a, b) for a, b in zip(f0, f1))
    if FEATURES in capabilities(model):
        np.testing.assert_array_equal(model.embed(probes), loaded.embed(probes))


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_fingerprint(kind, fitted):
    assert _fit(kind).fingerprint() == fitted(kind).fingerprint()


@pytest.mark.parametrize("kind", [k for k in KINDS if {TRAINABLE} == capabilities(models.KINDS.implementation(k))
                                  & {TRAINABLE, PRETRAINED}])  # pretrained kinds predict before any fit
def test_unfitted_model_refuses_in_one_line(kind, tmp_path):
    model = models.make(_settings(kind))
    for call in (lambda: model.predict(_probes(kind)[:1]), lambda: model.save(tmp_path / "model"),
                 model.fingerprint):
        with pytest.raises((RuntimeError, ValueError)) as err:
            call()
        assert "\n" not in str(err.value) and "fit" in str(err.value), (kind, str(err.value))
    assert not (tmp_path / "model").exists()


# ------------------------------------------------------------------------------------ atomistic kinds
@pytest.mark.parametrize("kind", ATOMISTIC)
def test_forces_are_minus_the_energy_gradient(kind, fitted):
    model = fitted(kind)
    exact = _float64(model.settings)
    h, tolerance = (1e-5, 1e-6) if exact else (1e-2, 5e-3)
    for atoms in (_sheared(7), _cluster(8)):
        [labelled] = model.predict([atoms])
        numeric = numeric_forces(lambda pair: [energy_of(a) for a in model.predict(pair)], atoms, h=h)
        scale = max(1.0, np.abs(numeric).max())
        np.testing.assert_allclose(forces_of(labelled), numeric, rtol=0, atol=tolerance * scale, err_msg=kind)


@pytest.mark.parametrize("kind", ATOMISTIC)
def test_energy_invariant_and_forces_equivariant(kind, fitted):
    """Rotating a cell (with its atoms) or a free cluster, translating, reordering the atoms."""
    model = fitted(kind)
    rotation = random_rotation(1)
    cell, cluster = _cu(12), _cluster(13)
    turned_cell = cell.copy()
    turned_cell.set_cell(cell.cell[:] @ rotation.T, scale_atoms=True)
    turned = cluster.copy()
    turned.positions = cluster.positions @ rotation.T + [0.3, 1.0, -2.0]
    order = np.random.default_rng(1).permutation(len(cell))
    (e, f) = _labels(model, [cell, turned_cell, cluster, turned, cell[order]])
    tolerance = 1e-8 if _float64(model.settings) else 1e-4
    for a, b in ((0, 1), (2, 3)):
        assert abs(e[b] - e[a]) < tolerance * max(1.0, abs(e[a])), (kind, a, b)
        np.testing.assert_allclose(f[b], f[a] @ rotation.T, rtol=0, atol=tolerance * 10, err_msg=kind)
    assert abs(e[4] - e[0]) < tolerance * max(1.0, abs(e[0]))
    np.testing.assert_allclose(f[4], f[0][order], rtol=0, atol=tolerance * 10, err_msg=kind)


@pytest.mark.parametrize("kind", [k for k in ATOMISTIC
                                  if BATCHED_FORCES in capabilities(models.KINDS.implementation(k))])
def test_batched_forces_equal_the_calculators(kind, fitted):
    """Replicas of different sizes, periodic and free, one atom a lattice vector outside its
    cell; then moved beyond any neighbour-list skin: each replica's energy and forces are its
    ASE calculator's."""
    model = fitted(kind)
    outside = _cu(3)
    outside.positions[0] += outside.cell[0] - outside.cell[2]
    replicas = [outside, _sheared(4), _cluster(5), _cu(6, repeat=(2, 2, 1))]
    ptr = np.cumsum([0] + [len(a) for a in replicas])
    evaluate = model.batched_potential().bind(replicas)
    positions = np.concatenate([a.positions for a in replicas])
    rng = np.random.default_rng(0)
    for move in (0.0, 0.3, 1.5):
        positions = positions + rng.normal(scale=move / np.sqrt(3), size=positions.shape)
        energies, forces = evaluate(positions)
        assert energies.shape == (len(replicas),) and forces.shape == positions.shape
        calc = model.calculator()
        for r, atoms in enumerate(replicas):
            moved = Atoms(atoms.numbers, positions[ptr[r]:ptr[r + 1]], cell=atoms.cell, pbc=atoms.pbc)
            np.testing.assert_allclose(forces[ptr[r]:ptr[r + 1]], calc.get_forces(moved), rtol=0, atol=1e-5,
                                       err_msg=f"{kind} replica {r} after moving {move} Å")
            assert abs(energies[r] - calc.get_potential_energy(moved)) < 1e-5 * max(1.0, abs(energies[r]))


@pytest.mark.parametrize("kind", [k for k in ATOMISTIC if FEATURES in capabilities(models.KINDS.implementation(k))])
def test_embedding_shape_and_invariance(kind, fitted):
    model = fitted(kind)
    probes = _probes(kind)
    embeddings = model.embed(probes)
    assert embeddings.ndim == 2 and embeddings.shape[0] == len(probes) and embeddings.shape[1] >= 1
    assert np.isfinite(embeddings).all() and model.embed([]).shape == (0, embeddings.shape[1])
    cluster, cell = _cluster(9), _cu(10)
    rotation = random_rotation(0)
    turned = cluster.copy()
    turned.positions = cluster.positions @ rotation.T + [1.0, -2.0, 0.5]
    turned_cell = cell.copy()
    turned_cell.set_cell(cell.cell[:] @ rotation.T, scale_atoms=True)
    order = np.random.default_rng(0).permutation(len(cell))
    tolerance = 1e-8 if _float64(model.settings) else 1e-5
    e = model.embed([cluster, turned, cell, turned_cell, cell[order]])
    scale = max(1.0, np.abs(e).max())
    for a, b in ((0, 1), (2, 3), (2, 4)):
        np.testing.assert_allclose(e[b], e[a], rtol=0, atol=tolerance * scale, err_msg=f"{kind} {a} vs {b}")


@pytest.mark.parametrize("kind", ATOMISTIC)
def test_species_outside_the_training_set(kind, fitted):
    model = fitted(kind)
    alloy = _cu(11)
    alloy.numbers[[0, 3]] = 47  # Ag: fitted on Cu only
    behaviour = OUTSIDE_SPECIES.get(kind)
    try:
        [labelled] = model.predict([alloy])
    except ValueError as err:
        assert behaviour in (None, "refuses"), f"{kind} refused: {err}"
        assert "Ag" in str(err) and "\n" not in str(err), str(err)
        if BATCHED_FORCES in capabilities(model):
            with pytest.raises(ValueError, match="Ag"):
                model.batched_potential().bind([alloy])
        return
    assert behaviour in (None, "predicts"), f"{kind} predicted an element it was not fitted with"
    assert np.isfinite(energy_of(labelled)) and np.isfinite(forces_of(labelled)).all()
