"""Errors of a model against oracle labels, in the units users quote (meV/atom, meV/Å)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.structures import energy_of, forces_of


def label_rmse(predicted: Sequence[Atoms], reference: Sequence[Atoms]) -> tuple[float, float]:
    """(energy RMSE in meV/atom, force-component RMSE in meV/Å) of ``predicted`` vs ``reference``."""
    if len(predicted) != len(reference) or not len(reference):
        raise ValueError(f"label_rmse needs two equally long non-empty lists, got {len(predicted)} and {len(reference)}")
    if any(len(p) != len(r) for p, r in zip(predicted, reference)):
        raise ValueError("label_rmse: paired structures differ in atom count")
    de = np.array([(energy_of(p) - energy_of(r)) / len(r) for p, r in zip(predicted, reference)])
    df = np.concatenate([(forces_of(p) - forces_of(r)).ravel() for p, r in zip(predicted, reference)])
    return float(np.sqrt(np.mean(de**2)) * 1000.0), float(np.sqrt(np.mean(df**2)) * 1000.0)


# --- the per-generation metric suite ------------------------------------------------------
PROBES = ("id", "ood")
#: comparison targets for a generation's model: generation 0, the previous generation,
#: and the reference model trained once on a larger real dataset
ALIGNMENT_TARGETS = ("gen0", "prev", "ref")


def _guarded(name: str, fn, warnings: list[str]) -> dict:
    """A metric that cannot be computed (too few points, all ties) is recorded as missing,
    with a warning in the row, rather than ending a long run."""
    try:
        return fn()
    except ValueError as exc:
        warnings.append(f"{name}: {exc}")
        return {}


def data_metrics(structures: Sequence[Atoms], label: str, yard, k: int, warnings: list[str]) -> dict:
    """Diversity of a data set (SOAP TwoNN dimension, Vendi, coverage of the real data) and its
    label tails. ``yard`` supplies the standardised descriptors, the real reference and the
    fixed Vendi bandwidth (``collapse_sim.loop.Yardsticks``)."""
    from collapse_sim.metrics import coverage, id_twonn, label_statistics, vendi_score

    if not structures:
        return {}
    D, real = yard.describe(structures), yard.real_descriptors
    row = {}
    row |= _guarded(f"id_twonn_{label}", lambda: {f"id_twonn_{label}": id_twonn(D)}, warnings)
    row[f"vendi_{label}"] = vendi_score(D, kernel="rbf", bandwidth=yard.vendi_bandwidth)
    row |= _guarded(f"coverage_{label}", lambda: {f"coverage_{label}": coverage(D, real, k=min(k, len(real) - 1))}, warnings)
    energies = [energy_of(a) / len(a) for a in structures]
    forces = [np.linalg.norm(forces_of(a), axis=1) for a in structures]
    stats = label_statistics(energies, forces)
    row[f"energy_std_{label}"] = stats["energy_std"]
    row[f"force_p99_{label}"] = stats["force_p99"]
    row[f"force_frac_above_real_p99_{label}"] = float((np.concatenate(forces) > yard.real_force_p99).mean())
    return row


def model_metrics(embeddings: dict[str, np.ndarray], targets: dict[str, dict[str, np.ndarray]], k: int,
                  warnings: list[str]) -> dict:
    """Embedding intrinsic dimension per probe set, and alignment with each available target model."""
    from collapse_sim.metrics import alignment_metrics, id_twonn

    row = {}
    for probe, X in embeddings.items():
        row |= _guarded(f"id_twonn_model_{probe}", lambda: {f"id_twonn_model_{probe}": id_twonn(X)}, warnings)
        for target, by_probe in targets.items():
            m = _guarded(f"alignment_{target}_{probe}", lambda: alignment_metrics(X, by_probe[probe], k=k), warnings)
            if m:
                row |= {f"cknna_{target}_{probe}": m["cknna"], f"mknn_{target}_{probe}": m["mknn"],
                        f"dcor_{target}_{probe}": m["dcor"], f"ii_model_to_{target}_{probe}": m["ii_x_to_y"],
                        f"ii_{target}_to_model_{probe}": m["ii_y_to_x"]}
    return row
