"""Diversity and label tails of a structure set (a training set or a sampled pool),
measured against the real reference data; and the chemistry of a sampled pool of molecules,
measured against the lineage's real structures."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.data.structures import energy_of, forces_of
from collapse_sim.measure._guard import guarded


def data_metrics(structures: Sequence[Atoms], label: str, yard, k: int, warnings: list[str]) -> dict:
    """Diversity of a data set (SOAP TwoNN dimension, Vendi, coverage of the real data) and its
    label tails. ``yard`` supplies the standardised descriptors, the real reference and the
    fixed Vendi bandwidth (``collapse_sim.measure.yardsticks.Yardsticks``)."""
    from collapse_sim.metrics import coverage, id_twonn, label_statistics, vendi_score

    if not structures:
        return {}
    D, real = yard.describe(structures), yard.real_descriptors
    row = {}
    row |= guarded(f"id_twonn_{label}", lambda: {f"id_twonn_{label}": id_twonn(D)}, warnings)
    row[f"vendi_{label}"] = vendi_score(D, kernel="rbf", bandwidth=yard.vendi_bandwidth)
    row |= guarded(f"coverage_{label}",
                   lambda: {f"coverage_{label}": coverage(D, real, k=min(k, len(real) - 1))}, warnings)
    energies = [energy_of(a) / len(a) for a in structures]
    forces = [np.linalg.norm(forces_of(a), axis=1) for a in structures]
    stats = label_statistics(energies, forces)
    row[f"energy_std_{label}"] = stats["energy_std"]
    row[f"force_p99_{label}"] = stats["force_p99"]
    row[f"force_frac_above_real_p99_{label}"] = float((np.concatenate(forces) > yard.real_force_p99).mean())
    return row


def bond_metrics(sampled: Sequence[Atoms], real: Sequence[Atoms], warnings: list[str]) -> dict:
    """Bond-graph change and bond-length drift of the sampled pool against ``real``, the lineage's
    real training structures (the same molecules: sampling starts from them). Nothing for
    periodic systems, where a neighbour graph is no collapse signal, or without real data."""
    from collapse_sim.metrics import bond_graph_changed, bond_length_w1

    if not sampled or not real or any(a.pbc.any() for a in (*sampled, *real)):
        return {}
    row = {"bond_graph_changed_sampled": bond_graph_changed(sampled, real)}
    return row | guarded("bond_length_w1_sampled", lambda: {"bond_length_w1_sampled": bond_length_w1(sampled, real)},
                         warnings)
