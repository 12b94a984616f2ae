"""What the report needs from the stored structure sets (train.extxyz, sampled.extxyz):
provenance counts, per-atom force magnitudes, per-atom nearest-neighbour distances and, for
isolated molecules, bond lengths by element pair.

Each file is read once (identical files, such as the generation-0 training set every
lineage of a seed shares, are read once by content hash) and reduced to a ``SetSummary``.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapse_sim.data.io import read_structures
from collapse_sim.metrics.bonds import bond_lengths

#: neighbour search radius (Å); atoms with no neighbour inside it are searched again wider
_NN_CUTOFF = 3.5


def _concatenated(parts) -> np.ndarray:
    parts = list(parts)
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)


@dataclass
class SetSummary:
    n_structures: int
    composition: Counter  # (origin, generation of origin) -> count
    force_magnitudes: np.ndarray  # eV/Å, per atom (empty when the set has no force labels)
    bond_lengths: dict[str, np.ndarray]  # Å, by element pair ('C-H'); empty unless every structure is a molecule
    nn_distances: np.ndarray | None = None  # Å, per atom; None unless the geometry was asked for


def nearest_neighbour_distances(atoms) -> np.ndarray:
    """Distance from every atom to its nearest other atom (periodic images included)."""
    n = len(atoms)
    if n < 2 and not any(atoms.pbc):
        return np.zeros(0)
    fast = _image_nn(atoms)
    return fast if fast is not None else _neighbour_list_nn(atoms)


#: largest number of pair distances the numpy path computes before leaving it to ASE's neighbour list
_MAX_PAIRS = 4_000_000


def _image_nn(atoms) -> np.ndarray | None:
    """All-pairs distances over just the periodic images that can hold an atom's nearest
    neighbour (numpy; fast for the small cells of these runs, tiny cells included, where the
    minimum image is not the nearest one); None for partly periodic or large cells.

    With minimum-image offsets (fractions in [−½, ½]), every atom's nearest neighbour is at most
    r away, r the largest minimum-image (or own-image) distance; an image shifted by s_i cells
    along axis i lies at least width_i·(|s_i| − ½) away, so |s_i| ≤ r/width_i + ½ covers it."""
    pos = atoms.get_positions()
    n = len(pos)
    if n * n > _MAX_PAIRS or (any(atoms.pbc) and not all(atoms.pbc)):
        return None
    delta = pos[:, None, :] - pos[None, :, :]  # allocated only once the size is known to be small enough
    if not any(atoms.pbc):
        d = np.sqrt((delta**2).sum(-1))
        np.fill_diagonal(d, np.inf)
        return d.min(axis=1)
    cell = atoms.cell.array
    volume = abs(np.linalg.det(cell))
    if volume <= 0:
        return None
    widths = np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])
    frac = delta @ np.linalg.inv(cell)
    delta = (frac - np.round(frac)) @ cell
    d = np.sqrt((delta**2).sum(-1))
    np.fill_diagonal(d, np.inf)
    reach = float(np.minimum(d.min(axis=1), np.linalg.norm(cell, axis=1).min()).max())
    bound = np.floor(reach / widths + 0.5).astype(int)
    shifts = np.stack(np.meshgrid(*[np.arange(-k, k + 1) for k in bound], indexing="ij"), -1).reshape(-1, 3)
    if n * n * len(shifts) > _MAX_PAIRS:
        return None
    nearest = np.full(n, np.inf)
    for shift in shifts:
        if not shift.any():
            nearest = np.minimum(nearest, d.min(axis=1))
            continue
        image = np.sqrt(((delta + shift @ cell) ** 2).sum(-1))
        nearest = np.minimum(nearest, image.min(axis=1))
    return nearest


def _neighbour_list_nn(atoms) -> np.ndarray:
    from ase.neighborlist import neighbor_list

    n = len(atoms)
    out = np.full(n, np.inf)
    cutoff = _NN_CUTOFF
    for _ in range(4):
        i, d = neighbor_list("id", atoms, cutoff)
        np.minimum.at(out, i, d)
        if np.isfinite(out).all():
            break
        cutoff *= 2.0
    return out[np.isfinite(out)]


def _forces(atoms) -> np.ndarray | None:
    calc = atoms.calc
    if calc is not None and "forces" in getattr(calc, "results", {}):
        return np.asarray(calc.results["forces"])
    if "forces" in atoms.arrays:
        return np.asarray(atoms.arrays["forces"])
    return None


def summarise(structures, geometry: bool = True) -> SetSummary:
    """The set reduced to what the report draws; ``geometry`` false leaves out the
    nearest-neighbour distances (the provenance figure needs only the composition)."""
    composition: Counter = Counter()
    fmag = []
    for atoms in structures:
        origin = str(atoms.info.get("origin", "unknown"))
        gen = atoms.info.get("generation")
        composition[(origin, int(gen) if isinstance(gen, (int, np.integer)) else None)] += 1
        f = _forces(atoms)
        if f is not None:
            fmag.append(np.linalg.norm(f, axis=1))
    molecules = bool(structures) and not any(a.pbc.any() for a in structures)
    nn = _concatenated(nearest_neighbour_distances(atoms) for atoms in structures) if geometry else None
    return SetSummary(len(structures), composition, _concatenated(fmag),
                      bond_lengths(structures) if molecules else {}, nn)


class SetReader:
    """Reads and summarises structure files, once per distinct content; failures are reported
    through ``warn`` and give ``None``."""

    def __init__(self, warn):
        self._warn = warn
        self._by_hash: dict[str, SetSummary | None] = {}
        self._by_path: dict[Path, SetSummary | None] = {}

    def get(self, path: Path, context: str = "", geometry: bool = True) -> SetSummary | None:
        """The file's summary, with its nearest-neighbour distances unless ``geometry`` is false
        (a summary made without them is made again when they are asked for)."""
        path = Path(path)
        cached = self._by_path.get(path, ...)
        if cached is None or (cached is not ... and (not geometry or cached.nn_distances is not None)):
            return cached
        summary = None
        if path.is_file():
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                summary = self._by_hash.get(digest)
                if summary is None or (geometry and summary.nn_distances is None):
                    summary = summarise(read_structures(path), geometry)
                    self._by_hash[digest] = summary
            except Exception as exc:  # noqa: BLE001 - any parse failure is a damaged file
                self._warn(f"{context or path}: {path.name} is unreadable ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); skipped")
        self._by_path[path] = summary
        return summary
