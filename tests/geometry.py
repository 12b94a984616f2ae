"""Geometry helpers for invariance tests."""
from __future__ import annotations

import numpy as np


def random_rotation(seed: int) -> np.ndarray:
    """A proper rotation (det +1), uniformly distributed (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def numeric_forces(energies, atoms, h: float = 1e-5) -> np.ndarray:
    """−∂E/∂x by central differences; ``energies(list of Atoms) -> energies`` (one call per
    displaced pair, so a model predicts both displacements in one batch)."""
    out = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += h
            minus.positions[i, k] -= h
            e_plus, e_minus = energies([plus, minus])
            out[i, k] = -(e_plus - e_minus) / (2 * h)
    return out
