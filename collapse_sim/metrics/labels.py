"""Spread and tail statistics of labels (per-atom energies, per-atom force magnitudes).

Collapse shows first in the tails: self-generated data loses high-force, high-energy
configurations long before the mean moves. These are 1-D order statistics, so plain
numpy (same percentile convention as everywhere else: linear interpolation).
"""
from __future__ import annotations

import numpy as np


def _values(x, name: str) -> np.ndarray:
    """A flat float array from an array, tensor or list of per-structure arrays."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    if isinstance(x, (list, tuple)) and x and np.ndim(x[0]) > 0:
        parts = [_values(part, name) for part in x]
        return np.concatenate(parts)
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 3 and name.startswith("force"):
        raise ValueError(f"label_statistics: {name} looks like force vectors (m, 3); pass per-atom magnitudes")
    arr = arr.reshape(-1)
    if arr.size == 0:
        raise ValueError(f"label_statistics: {name} is empty")
    if not np.isfinite(arr).all():
        raise ValueError(f"label_statistics: {name} contains NaN or inf")
    return arr


def _summary(prefix: str, v: np.ndarray) -> dict[str, float]:
    p01, p25, p75, p99 = np.percentile(v, [1, 25, 75, 99])
    return {
        f"{prefix}_mean": float(v.mean()),
        f"{prefix}_std": float(v.std()),
        f"{prefix}_iqr": float(p75 - p25),
        f"{prefix}_p01": float(p01),
        f"{prefix}_p99": float(p99),
        f"{prefix}_min": float(v.min()),
        f"{prefix}_max": float(v.max()),
    }


def label_statistics(
    energies_per_atom,
    force_magnitudes,
    *,
    reference_energies_per_atom=None,
    reference_force_magnitudes=None,
) -> dict[str, float]:
    """Mean/std/IQR/1st and 99th percentile/min/max of energies per atom and force magnitudes.

    With a reference (e.g. the real data), adds tail occupancy relative to it:
    ``force_frac_above_ref_p99`` (fraction of force magnitudes above the reference's 99th
    percentile; 0.01 if the distributions match) and ``energy_frac_outside_ref_p01_p99``
    (0.02 if they match).
    """
    energies = _values(energies_per_atom, "energies_per_atom")
    forces = _values(force_magnitudes, "force_magnitudes")
    stats = {**_summary("energy", energies), **_summary("force", forces)}
    if reference_force_magnitudes is not None:
        ref_p99 = np.percentile(_values(reference_force_magnitudes, "reference_force_magnitudes"), 99)
        stats["force_frac_above_ref_p99"] = float((forces > ref_p99).mean())
    if reference_energies_per_atom is not None:
        ref_p01, ref_p99 = np.percentile(_values(reference_energies_per_atom, "reference_energies_per_atom"), [1, 99])
        stats["energy_frac_outside_ref_p01_p99"] = float(((energies < ref_p01) | (energies > ref_p99)).mean())
    return stats
