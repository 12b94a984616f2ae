"""Model-independent structure descriptors for data-diversity metrics.

SOAP (Bartók, Kondor & Csányi 2013) via dscribe is the standard smooth, rotation-,
translation- and permutation-invariant description of atomic environments in MLIP
data work, and averaging the per-atom power spectra gives one fixed-length vector per
structure for periodic crystals and isolated molecules alike.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms


def structure_descriptors(
    structures: Sequence[Atoms],
    *,
    species: Sequence[str] | None = None,
    r_cut: float = 5.0,
    n_max: int = 4,
    l_max: int = 3,
    sigma: float = 1.0,
    n_jobs: int = 1,
) -> np.ndarray:
    """(n, p) per-structure mean of per-atom SOAP vectors.

    ``species`` fixes the feature layout: descriptors from different calls are only
    comparable when it is the same (default: the elements present in ``structures``).
    Periodicity is taken from each structure's ``pbc``.
    """
    from dscribe.descriptors import SOAP  # heavy import (numba), only when descriptors are asked for

    structures = list(structures)
    if not structures:
        raise ValueError("structure_descriptors: no structures given")
    if species is None:
        species = sorted({symbol for atoms in structures for symbol in atoms.get_chemical_symbols()})
    out: np.ndarray | None = None
    for periodic in (True, False):
        positions = [i for i, atoms in enumerate(structures) if bool(np.any(atoms.pbc)) == periodic]
        if not positions:
            continue
        soap = SOAP(
            species=list(species),
            periodic=periodic,
            r_cut=r_cut,
            n_max=n_max,
            l_max=l_max,
            sigma=sigma,
            average="outer",
            dtype="float64",
        )
        features = soap.create([structures[i] for i in positions], n_jobs=n_jobs)
        features = np.asarray(features).reshape(len(positions), -1)
        if out is None:
            out = np.empty((len(structures), features.shape[1]))
        out[positions] = features
    return out
