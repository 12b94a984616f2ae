"""Errors of a model against oracle labels, in the units users quote (meV/atom, meV/Å): in
total, per element, and for energies after a per-composition linear fit (so a per-element
offset, which an E0 absorbs, does not dominate the energy column)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.data.structures import energy_of, forces_of


def label_errors(predicted: Sequence[Atoms], reference: Sequence[Atoms]) -> tuple[np.ndarray, np.ndarray]:
    """(per-structure total-energy errors in eV, (m, 3) force errors in eV/Å) of ``predicted`` vs
    ``reference``, atoms in the reference's order."""
    if len(predicted) != len(reference) or not len(reference):
        raise ValueError(f"label_rmse needs two equally long non-empty lists, "
                         f"got {len(predicted)} and {len(reference)}")
    if any(len(p) != len(r) for p, r in zip(predicted, reference)):
        raise ValueError("label_rmse: paired structures differ in atom count")
    de = np.array([energy_of(p) - energy_of(r) for p, r in zip(predicted, reference)])
    df = np.concatenate([forces_of(p) - forces_of(r) for p, r in zip(predicted, reference)])
    return de, df


def _rmse(de: np.ndarray, df: np.ndarray, reference: Sequence[Atoms]) -> tuple[float, float]:
    per_atom = de / np.array([len(r) for r in reference])
    return float(np.sqrt(np.mean(per_atom**2)) * 1000.0), float(np.sqrt(np.mean(df.ravel() ** 2)) * 1000.0)


def label_rmse(predicted: Sequence[Atoms], reference: Sequence[Atoms]) -> tuple[float, float]:
    """(energy RMSE in meV/atom, force-component RMSE in meV/Å) of ``predicted`` vs ``reference``."""
    return _rmse(*label_errors(predicted, reference), reference)


def probe_rmse(model, probes: dict[str, list[Atoms]],
               teacher: dict[str, list[Atoms]] | None = None) -> dict[str, float]:
    """``prediction_rmse`` of the model's predictions of every probe set."""
    return prediction_rmse({p: model.predict(structures) for p, structures in probes.items()}, probes, teacher)


def prediction_rmse(predicted: dict[str, list[Atoms]], probes: dict[str, list[Atoms]],
                    teacher: dict[str, list[Atoms]] | None = None) -> dict[str, float]:
    """On every probe set: ``rmse_energy_<probe>``, ``rmse_forces_<probe>``,
    ``rmse_energy_<probe>_composition`` and ``rmse_forces_<probe>_<element>``; with ``teacher`` (the
    same structures labelled by the scenario's teacher), also ``rmse_energy_<probe>_teacher``,
    ``rmse_forces_<probe>_teacher`` and ``rmse_energy_<probe>_teacher_composition``."""
    from collapse_sim.metrics import composition_fit_rmse, force_rmse_per_element

    row = {}
    for p, structures in probes.items():
        de, df = label_errors(predicted[p], structures)
        row[f"rmse_energy_{p}"], row[f"rmse_forces_{p}"] = _rmse(de, df, structures)
        numbers = [a.numbers for a in structures]
        row[f"rmse_energy_{p}_composition"] = composition_fit_rmse(de, numbers) * 1000.0
        per_element = force_rmse_per_element(df, np.concatenate(numbers))
        row |= {f"rmse_forces_{p}_{element}": value * 1000.0 for element, value in per_element.items()}
        if teacher and p in teacher:
            de, df = label_errors(predicted[p], teacher[p])
            row[f"rmse_energy_{p}_teacher"], row[f"rmse_forces_{p}_teacher"] = _rmse(de, df, structures)
            row[f"rmse_energy_{p}_teacher_composition"] = composition_fit_rmse(de, numbers) * 1000.0
    return row
