"""Model errors resolved by chemistry: force errors per element, and energy errors once a
per-composition linear fit has taken out what an atomic reference energy absorbs.

A total RMSE hides which element a model gets wrong (hydrogens, being many, dominate a
molecule's force RMSE), and an energy RMSE is often dominated by a constant per-element
shift (the E0s) that no property depends on. Both are plain least squares, so numpy.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase.data import chemical_symbols


def force_rmse_per_element(force_errors, numbers) -> dict[str, float]:
    """Force-component RMSE of the atoms of each element: {symbol: RMSE} in the errors' unit.
    ``force_errors``: (m, 3) predicted − reference forces; ``numbers``: the m atomic numbers."""
    errors = np.asarray(force_errors, dtype=np.float64).reshape(-1, 3)
    numbers = np.asarray(numbers).reshape(-1)
    if len(errors) != len(numbers) or not len(numbers):
        raise ValueError(f"force_rmse_per_element: {len(errors)} force rows for {len(numbers)} atoms")
    return {chemical_symbols[z]: float(np.sqrt(np.mean(errors[numbers == z] ** 2))) for z in np.unique(numbers)}


def composition_fit_rmse(energy_errors, numbers: Sequence) -> float:
    """RMSE per atom of the energy errors left after a least-squares fit on element counts.

    ``energy_errors``: per-structure total-energy errors E_pred − E_ref; ``numbers``: each
    structure's atomic numbers. The errors are fitted as Σ_e c_e · n_e (one coefficient per
    element, no intercept), as arXiv 2512.03750 does for OMat24, and the residual is divided
    by each structure's atom count: a per-element offset then reads 0, and without it the value
    equals the raw per-atom energy RMSE. With as many structures as elements the fit is exact.
    """
    errors = np.asarray(energy_errors, dtype=np.float64).reshape(-1)
    if len(errors) != len(numbers) or not len(errors):
        raise ValueError(f"composition_fit_rmse: {len(errors)} energy errors for {len(numbers)} structures")
    elements = np.unique(np.concatenate([np.asarray(z).reshape(-1) for z in numbers]))
    counts = np.array([[np.count_nonzero(np.asarray(z) == e) for e in elements] for z in numbers], dtype=np.float64)
    coefficients = np.linalg.lstsq(counts, errors, rcond=None)[0]
    residual = (errors - counts @ coefficients) / counts.sum(axis=1)
    return float(np.sqrt(np.mean(residual**2)))
