"""Pools: immutable, provenance-tagged groups of structures; training sets are lists of pools."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class Pool:
    """Structures with one origin ('real' | 'synthetic') and one producing generation."""

    origin: str
    generation: int
    structures: tuple[Atoms, ...]

    @property
    def key(self) -> tuple[str, int]:
        return (self.origin, self.generation)

    def __len__(self) -> int:
        return len(self.structures)

    def subset(self, indices: Iterable[int]) -> Pool:
        return Pool(self.origin, self.generation, tuple(self.structures[i] for i in indices))

    def sample(self, n: int, rng: np.random.Generator) -> Pool:
        """``n`` structures without replacement (all of them if ``n`` >= size), order kept."""
        if n >= len(self):
            return self
        return self.subset(sorted(rng.choice(len(self), size=n, replace=False).tolist()))


def flatten(pools: Sequence[Pool]) -> list[Atoms]:
    return [atoms for pool in pools for atoms in pool.structures]


def group_into_pools(structures: Sequence[Atoms]) -> list[Pool]:
    """Inverse of ``flatten`` using the provenance in ``atoms.info``; pool order by first appearance."""
    groups: dict[tuple[str, int], list[Atoms]] = {}
    for atoms in structures:
        groups.setdefault((atoms.info["origin"], int(atoms.info["generation"])), []).append(atoms)
    return [Pool(origin, gen, tuple(items)) for (origin, gen), items in groups.items()]


def real_structures(training_sets: Iterable[Sequence[Pool]]) -> list[Atoms]:
    """The real structures of these training sets, each real pool once (its first occurrence:
    a policy that carries generation 0's real data forward repeats, or subsamples, that pool)."""
    pools: dict[tuple[str, int], Pool] = {}
    for train in training_sets:
        for pool in train:
            if pool.origin == "real":
                pools.setdefault(pool.key, pool)
    return flatten(list(pools.values()))


def composition(pools: Sequence[Pool]) -> dict[str, int]:
    n_real = sum(len(p) for p in pools if p.origin == "real")
    n_total = sum(len(p) for p in pools)
    return {"n_train": n_total, "n_real": n_real, "n_synthetic": n_total - n_real}
