"""Covalent bond graphs of isolated molecules, and the two collapse signals a chemist reads
from them: synthetic structures that are no longer the same molecule (a bond broken or
formed), and bond lengths drifting away from the real data's.

A bond is a pair of atoms closer than ``scale`` × (r_cov_i + r_cov_j) (ASE's
``covalent_radii``; 1.2 is the usual tolerance for molecules at a few hundred kelvin).
Isolated molecules only: a periodic cell would need minimum-image pairs, and a metal's
neighbour graph changes with every hop and vacancy, so it says nothing about collapse there.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols, covalent_radii
from scipy.spatial.distance import pdist
from scipy.stats import wasserstein_distance

#: bond if closer than SCALE × (sum of covalent radii)
SCALE = 1.2


def _bonds(atoms: Atoms, scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, length) of every bond, i < j."""
    if atoms.pbc.any():
        raise ValueError("bond graphs are defined for isolated molecules only (pbc=False)")
    n = len(atoms)
    i, j = np.triu_indices(n, 1)  # the order of pdist's condensed distances
    d = pdist(atoms.positions) if n > 1 else np.zeros(0)
    r = covalent_radii[atoms.numbers]
    bonded = d < scale * (r[i] + r[j])
    return i[bonded], j[bonded], d[bonded]


def bond_graph(atoms: Atoms, scale: float = SCALE) -> frozenset[tuple[int, int]]:
    """The covalent bond graph as a set of atom-index pairs (i < j)."""
    i, j, _ = _bonds(atoms, scale)
    return frozenset(zip(i.tolist(), j.tolist()))


def bond_graph_changed(structures: Sequence[Atoms], real: Sequence[Atoms], scale: float = SCALE) -> float:
    """Fraction of ``structures`` whose bond graph is none of the graphs the ``real`` structures
    of the same molecule have.

    "The same molecule" is the same sequence of atomic numbers (MD keeps the atom order, so a
    synthetic structure carries the order of the real one it descends from); a structure whose
    sequence no real structure has counts as changed. Real data sampled at finite temperature
    may itself hold a few graphs per molecule (a stretched bond near the cutoff): each counts
    as the molecule's.
    """
    if not structures:
        raise ValueError("bond_graph_changed: no structures")
    known: dict[tuple[int, ...], set] = {}
    for atoms in real:
        known.setdefault(tuple(atoms.numbers.tolist()), set()).add(bond_graph(atoms, scale))
    changed = [bond_graph(a, scale) not in known.get(tuple(a.numbers.tolist()), ()) for a in structures]
    return float(np.mean(changed))


def bond_lengths(structures: Sequence[Atoms], scale: float = SCALE) -> dict[str, np.ndarray]:
    """Every bond length (Å) of ``structures``, by element pair in alphabetical order ('C-H')."""
    by_pair: dict[str, list[np.ndarray]] = {}
    for atoms in structures:
        i, j, d = _bonds(atoms, scale)
        symbols = np.array(chemical_symbols)[atoms.numbers]
        pairs = np.where(symbols[i] <= symbols[j], np.char.add(np.char.add(symbols[i], "-"), symbols[j]),
                         np.char.add(np.char.add(symbols[j], "-"), symbols[i]))
        for pair in np.unique(pairs):
            by_pair.setdefault(str(pair), []).append(d[pairs == pair])
    return {pair: np.concatenate(parts) for pair, parts in sorted(by_pair.items())}


def bond_length_w1(structures: Sequence[Atoms], real: Sequence[Atoms], scale: float = SCALE) -> float:
    """Mean over element pairs of the 1-D Wasserstein-1 distance (Å) between the bond lengths of
    ``structures`` and of ``real``, weighted by the pair's bond count in ``real``.

    Pairs absent from either side are left out (a broken or new bond is what
    ``bond_graph_changed`` counts); differences in the mix of molecules contribute too, so two
    samples of the same real distribution read small but not exactly 0.
    """
    got, ref = bond_lengths(structures, scale), bond_lengths(real, scale)
    common = [pair for pair in ref if pair in got]
    if not common:
        raise ValueError("bond_length_w1: no element pair is bonded in both sets")
    weights = np.array([len(ref[pair]) for pair in common], dtype=float)
    distances = np.array([wasserstein_distance(got[pair], ref[pair]) for pair in common])
    return float(np.average(distances, weights=weights))
