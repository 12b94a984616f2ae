"""What both Langevin engines (ASE per replica, batched) share: when a trajectory is checked
and kept, and when it counts as exploded. One definition, so the engines' frames and failure
counts agree."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list
from matscipy.neighbours import neighbour_list as matscipy_neighbour_list


def _has_pair_closer_than(atoms: Atoms, distance: float) -> bool:
    """matscipy's neighbour list: for small cells it is a few hundred times faster than ASE's,
    which adds up when every replica is checked every few steps; it needs a full-rank cell."""
    neighbour_list = matscipy_neighbour_list if atoms.cell.rank == 3 else ase_neighbor_list
    return len(neighbour_list("i", atoms, distance)) > 0


def exploded(atoms: Atoms, forces: np.ndarray, energy: float, settings) -> bool:
    """The explosion criteria both engines apply at every check."""
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(atoms.positions).all()):
        return True
    if np.abs(forces).max(initial=0.0) > settings.max_force:
        return True
    return _has_pair_closer_than(atoms, settings.min_distance)


def segments(settings) -> list[tuple[int, bool]]:
    """(steps, keep a frame) between consecutive checks: equilibration in chunks of at most
    ``interval`` steps (checked, nothing kept), then ``steps // interval`` kept chunks."""
    eq, interval = settings.equilibration_steps, settings.interval
    return ([(min(interval, eq - step), False) for step in range(0, eq, interval)]
            + [(interval, True)] * (settings.steps // interval))
