"""Per-structure SOAP descriptors: shape, invariances, and that they tell structures apart."""
from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk, molecule

pytest.importorskip("dscribe")

from collapse_sim.metrics import structure_descriptors, vendi_score


def cu(a=3.61, repeat=2, rattle=0.0, seed=0):
    atoms = bulk("Cu", "fcc", a=a, cubic=True).repeat(repeat)
    if rattle:
        atoms.rattle(stdev=rattle, seed=seed)
    return atoms


def test_mixed_periodic_and_molecular_structures():
    water, methane = molecule("H2O"), molecule("CH4")
    structures = [cu(), water, cu(rattle=0.05), methane]
    D = structure_descriptors(structures)
    assert D.shape[0] == 4 and D.shape[1] > 0 and np.isfinite(D).all()
    # rows keep the input order whatever the periodic/molecular grouping
    species = ["C", "Cu", "H", "O"]
    assert np.allclose(D[1], structure_descriptors([water], species=species)[0])
    assert np.allclose(D[2], structure_descriptors([cu(rattle=0.05)], species=species)[0])


def test_invariant_to_rotation_translation_permutation_and_supercell():
    water = molecule("H2O")
    moved = water.copy()
    moved.rotate(37, "x", center="COM")
    moved.rotate(-81, (1, 2, 3))
    moved.translate([3.0, -1.0, 2.0])
    moved = moved[[2, 0, 1]]
    assert np.allclose(*structure_descriptors([water, moved]), rtol=1e-6, atol=1e-10)
    # averaged per-atom spectra of identical environments do not depend on the cell size
    small, large = structure_descriptors([cu(repeat=1), cu(repeat=3)])
    assert np.allclose(small, large, rtol=1e-6, atol=1e-10)


def test_distinguishes_structures():
    D = structure_descriptors([cu(), cu(a=3.8), cu(rattle=0.1, seed=1), cu(rattle=0.1, seed=2)])
    distances = np.linalg.norm(D[:, None] - D[None], axis=2)
    assert (distances[np.triu_indices(4, 1)] > 1e-6 * np.linalg.norm(D, axis=1).mean()).all()
    # a diverse set scores higher than copies of one structure
    assert vendi_score(D, kernel="rbf") > vendi_score(D[[0, 0, 0, 0]], kernel="rbf") == 1.0


def test_rejects_empty_input():
    with pytest.raises(ValueError, match="no structures"):
        structure_descriptors([])
