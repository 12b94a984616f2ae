"""The neighbour-list skin of batched MD: candidate pairs are kept within cutoff + skin and
rebuilt for a replica only once one of its atoms has moved more than skin/2 since the last
build, which is the rule that keeps every pair within the cutoff in the candidate list."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np


def stale_replicas(positions: np.ndarray, reference: np.ndarray, ptr: np.ndarray, skin: float) -> np.ndarray:
    """Indices of the replicas (atoms ``ptr[r]:ptr[r + 1]``) whose candidates must be rebuilt: an
    atom moved more than ``skin``/2 from ``reference`` (its position at the last build). A replica
    with non-finite positions (an exploded one, about to be stopped) keeps its candidates."""
    starts = ptr[:-1]
    moved = np.maximum.reduceat(((positions - reference) ** 2).sum(axis=1), starts)
    finite = np.logical_and.reduceat(np.isfinite(positions).all(axis=1), starts)
    return np.flatnonzero((moved > (skin / 2) ** 2) & finite)


def refresh_candidates(candidates: list, positions: np.ndarray, reference: np.ndarray, ptr: np.ndarray, skin: float,
                       rebuilds: np.ndarray, build: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> bool:
    """Rebuild the candidate pairs of every stale replica: ``build(r, its positions)`` gives its
    (pairs, shifts) within cutoff + skin, indexed within the replica; they are stored offset to the
    replica's atoms in ``candidates[r]``, its ``reference`` positions updated and ``rebuilds[r]``
    counted. True if any replica was rebuilt (the concatenated candidates must then be renewed)."""
    stale = stale_replicas(positions, reference, ptr, skin)
    for r in stale:
        lo, hi = ptr[r], ptr[r + 1]
        pairs, shifts = build(r, positions[lo:hi])
        candidates[r] = (pairs + lo, shifts)
        reference[lo:hi] = positions[lo:hi]
        rebuilds[r] += 1
    return stale.size > 0
