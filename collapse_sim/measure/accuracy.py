"""Errors of a model against oracle labels, in the units users quote (meV/atom, meV/Å)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.data.structures import energy_of, forces_of


def label_rmse(predicted: Sequence[Atoms], reference: Sequence[Atoms]) -> tuple[float, float]:
    """(energy RMSE in meV/atom, force-component RMSE in meV/Å) of ``predicted`` vs ``reference``."""
    if len(predicted) != len(reference) or not len(reference):
        raise ValueError(f"label_rmse needs two equally long non-empty lists, got {len(predicted)} and {len(reference)}")
    if any(len(p) != len(r) for p, r in zip(predicted, reference)):
        raise ValueError("label_rmse: paired structures differ in atom count")
    de = np.array([(energy_of(p) - energy_of(r)) / len(r) for p, r in zip(predicted, reference)])
    df = np.concatenate([(forces_of(p) - forces_of(r)).ravel() for p, r in zip(predicted, reference)])
    return float(np.sqrt(np.mean(de**2)) * 1000.0), float(np.sqrt(np.mean(df**2)) * 1000.0)


def probe_rmse(model, probes: dict[str, list[Atoms]]) -> dict[str, float]:
    """``rmse_energy_<probe>`` and ``rmse_forces_<probe>`` of ``model`` on every probe set."""
    row = {}
    for p, structures in probes.items():
        row[f"rmse_energy_{p}"], row[f"rmse_forces_{p}"] = label_rmse(model.predict(structures), structures)
    return row
