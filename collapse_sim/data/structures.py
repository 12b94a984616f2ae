"""Structures are ``ase.Atoms`` whose labels live in a SinglePointCalculator and
whose ``info`` holds provenance; these helpers keep that convention in one place."""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

#: provenance keys every stored structure carries in ``atoms.info``
PROVENANCE_KEYS = ("origin", "generation", "lineage", "producer", "sampler", "seed", "lab")
#: provenance key of a synthetic structure whose labels the oracle replaced (a policy's oracle
#: check): the oracle's import path; ``origin`` stays "synthetic" (the model chose the geometry)
ORACLE_CHECKED = "oracle_labelled"


def attach_labels(atoms: Atoms, energy: float, forces: np.ndarray, stress: np.ndarray | None = None) -> Atoms:
    """Return a copy of ``atoms`` (info kept) carrying the given labels."""
    out = atoms.copy()
    out.calc = None
    results = {"energy": float(energy), "forces": np.asarray(forces, dtype=float).reshape(len(atoms), 3)}
    if stress is not None:
        results["stress"] = np.asarray(stress, dtype=float).reshape(-1)
    out.calc = SinglePointCalculator(out, **results)
    return out


def energy_of(atoms: Atoms) -> float:
    return float(atoms.calc.results["energy"])


def forces_of(atoms: Atoms) -> np.ndarray:
    return np.asarray(atoms.calc.results["forces"])


def tag(structures: Iterable[Atoms], **provenance) -> list[Atoms]:
    """Set provenance fields in place (unknown keys are refused) and return the list."""
    unknown = set(provenance) - set(PROVENANCE_KEYS)
    if unknown:
        raise KeyError(f"unknown provenance keys {sorted(unknown)}")
    out = list(structures)
    for atoms in out:
        atoms.info.update(provenance)
    return out
