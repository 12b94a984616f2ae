"""The report's nearest-neighbour distances equal ASE's neighbour list on every kind of cell the
runs make: tiny periodic cells (where the minimum image is not the nearest), skewed and
rattled supercells, a single atom in a periodic cell, molecules."""
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list

from collapse_sim.report.datasets import _image_nn, nearest_neighbour_distances


def _ase(atoms) -> np.ndarray:
    i, d = neighbor_list("id", atoms, 12.0)
    out = np.full(len(atoms), np.inf)
    np.minimum.at(out, i, d)
    return out


def _rattled(atoms, seed, stdev=0.15):
    atoms = atoms.copy()
    atoms.rattle(stdev, seed=seed)
    return atoms


CELLS = {
    "fcc Cu, 4 atoms": _rattled(bulk("Cu", "fcc", a=3.61, cubic=True), 0),
    "fcc Cu, 32 atoms": _rattled(bulk("Cu", "fcc", a=3.61, cubic=True).repeat(2), 1),
    "fcc Cu, primitive (skewed)": bulk("Cu", "fcc", a=3.61),
    "strained hcp Mg": _rattled(bulk("Mg", "hcp", a=3.2, c=5.2).repeat((2, 1, 1)), 2),
    "rocksalt MgO": _rattled(bulk("MgO", "rocksalt", a=4.21), 3),
    "one atom, periodic": Atoms("Cu", cell=[[2.5, 0, 0], [1.2, 2.2, 0], [0, 0, 3.1]], pbc=True),
}


@pytest.mark.parametrize("name", list(CELLS))
def test_periodic_cells_match_the_neighbour_list(name):
    atoms = CELLS[name]
    fast = _image_nn(atoms)
    assert fast is not None  # the numpy path handles every cell of this size
    np.testing.assert_allclose(fast, _ase(atoms), rtol=0, atol=1e-10)
    np.testing.assert_allclose(nearest_neighbour_distances(atoms), _ase(atoms), rtol=0, atol=1e-10)


def test_molecules_and_partly_periodic_cells():
    water = molecule("CH3CH2OH")
    direct = np.array([np.delete(np.linalg.norm(water.positions - p, axis=1), i).min()
                       for i, p in enumerate(water.positions)])
    np.testing.assert_allclose(nearest_neighbour_distances(water), direct, atol=1e-12)
    slab = _rattled(bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 1)), 4)
    slab.pbc = (True, True, False)
    assert _image_nn(slab) is None  # left to the neighbour list
    np.testing.assert_allclose(nearest_neighbour_distances(slab), _ase(slab), atol=1e-10)
    assert nearest_neighbour_distances(Atoms("H", positions=[[0, 0, 0]])).size == 0
