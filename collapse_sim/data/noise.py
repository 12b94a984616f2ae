"""Gaussian label noise on energies (eV per structure), drawn from keyed streams.

* Oracle labels (``oracle.energy_noise``): structure k of an oracle draw gets
  sigma * N(0, 1) from ``stream(structure_seed_k, "oracle-energy-noise")``, where
  structure_seed_k is the seed the recipe plan gave that structure: the noise does not
  depend on labelling chunks, workers or resumption.
* Synthetic labels (``synthetic.energy_noise``): the pool the model of generation g - 1
  labels for generation g of a lineage gets sigma * N(0, 1) per structure, in order, from
  ``stream(seed, lineage, "synthetic-energy-noise", g)``.

Forces and stress are left as they are (the collapse laws are about energies).

* Label errors (``synthetic.label_error_rate`` p): each self-label of that pool is, with
  probability p, replaced by its negative (energy, forces and stress), drawn from
  ``stream(seed, lineage, "synthetic-label-errors", g)`` and marked ``label_error`` in the
  structure's info. A wrong label of known rate, the premise of the verification law (Feng et
  al. 2024) that ``validate-theory`` checks; a sign flip keeps the label a valid potential's.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.runtime.rng import stream

LABEL_ERROR = "label_error"


def with_label_errors(structures: list[Atoms], rate: float, seed: int, lineage: str, generation: int) -> list[Atoms]:
    """``structures`` unchanged if ``rate`` is 0, else copies with a keyed share of labels negated."""
    if not rate:
        return structures
    wrong = stream(seed, lineage, "synthetic-label-errors", generation).random(len(structures)) < rate
    out = []
    for atoms, flip in zip(structures, wrong):
        if flip:
            stress = atoms.calc.results.get("stress")
            atoms = attach_labels(atoms, -energy_of(atoms), -forces_of(atoms), None if stress is None else -stress)
            atoms.info[LABEL_ERROR] = True
        out.append(atoms)
    return out


def shift_energies(structures: Sequence[Atoms], deltas: Sequence[float]) -> list[Atoms]:
    """Copies (info kept) whose energy is shifted by ``deltas``; forces and stress unchanged."""
    out = []
    for atoms, delta in zip(structures, deltas, strict=True):
        stress = atoms.calc.results.get("stress")
        out.append(attach_labels(atoms, energy_of(atoms) + float(delta), forces_of(atoms), stress))
    return out


def oracle_noise(sigma: float, structure_seeds: Sequence[int]) -> np.ndarray:
    return np.array([sigma * stream(int(s), "oracle-energy-noise").standard_normal() for s in structure_seeds])


def synthetic_noise(sigma: float, n: int, seed: int, lineage: str, generation: int) -> np.ndarray:
    return sigma * stream(seed, lineage, "synthetic-energy-noise", generation).standard_normal(n)


def with_synthetic_noise(structures: list[Atoms], sigma: float, seed: int, lineage: str,
                         generation: int) -> list[Atoms]:
    """``structures`` unchanged if ``sigma`` is 0, else noisy copies (see the module docstring)."""
    if not sigma:
        return structures
    return shift_energies(structures, synthetic_noise(sigma, len(structures), seed, lineage, generation))
