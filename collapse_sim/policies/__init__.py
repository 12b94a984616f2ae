"""Data policies: given the lineage's history and this generation's fresh pools, which
pools does the next model train on? One small class per policy, one registry line each.

Protocol::

    fresh_real_needed(n_synthetic) -> int                   # new oracle structures wanted
    next_training_set(history, fresh_real, fresh_synthetic, rng) -> list[Pool]

``history`` is a list of ``GenerationData`` (generation 0 first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from collapse_sim.pools import Pool


@dataclass
class GenerationData:
    generation: int
    train: list[Pool]
    synthetic: Pool | None = None  # fresh synthetic pool offered to this generation
    fresh_real: Pool | None = None  # fresh oracle pool offered to this generation


class Policy(Protocol):
    def fresh_real_needed(self, n_synthetic: int) -> int: ...

    def next_training_set(
        self, history: Sequence[GenerationData], fresh_real: Pool | None, fresh_synthetic: Pool, rng: np.random.Generator
    ) -> list[Pool]: ...


class _NoFreshReal:
    def __init__(self, settings):
        self.settings = settings

    def fresh_real_needed(self, n_synthetic: int) -> int:
        return 0


class Replace(_NoFreshReal):
    def next_training_set(self, history, fresh_real, fresh_synthetic, rng):
        return [fresh_synthetic]


class Accumulate(_NoFreshReal):
    def next_training_set(self, history, fresh_real, fresh_synthetic, rng):
        return list(history[-1].train) + [fresh_synthetic]


def all_pools(history: Sequence[GenerationData], fresh: Sequence[Pool | None]) -> list[Pool]:
    """Every pool the lineage has seen: generation 0's real data, then each generation's fresh pools."""
    pools = list(history[0].train)
    for record in history[1:]:
        pools += [p for p in (record.fresh_real, record.synthetic) if p is not None]
    return pools + [p for p in fresh if p is not None]


class AccumulateSubsample(_NoFreshReal):
    def next_training_set(self, history, fresh_real, fresh_synthetic, rng):
        pools = all_pools(history, [fresh_real, fresh_synthetic])
        budget = self.settings.budget or sum(len(p) for p in history[0].train)
        sizes = np.array([len(p) for p in pools])
        total = int(sizes.sum())
        if budget >= total:
            return pools
        chosen = np.sort(rng.choice(total, size=budget, replace=False))
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        out = []
        for pool, start, stop in zip(pools, offsets[:-1], offsets[1:]):
            local = chosen[(chosen >= start) & (chosen < stop)] - start
            if len(local):
                out.append(pool.subset(local.tolist()))
        return out


class FreshReal:
    """Each generation's set has the synthetic pool's size; a fraction of it is new oracle data."""

    def __init__(self, settings):
        self.settings = settings

    def fresh_real_needed(self, n_synthetic: int) -> int:
        return int(round(self.settings.real_fraction * n_synthetic))

    def next_training_set(self, history, fresh_real, fresh_synthetic, rng):
        n_real = len(fresh_real) if fresh_real is not None else 0
        synthetic = fresh_synthetic.sample(len(fresh_synthetic) - n_real, rng)
        return [p for p in (fresh_real, synthetic) if p is not None and len(p)]


REGISTRY = {
    "replace": Replace,
    "accumulate": Accumulate,
    "accumulate-subsample": AccumulateSubsample,
    "fresh-real": FreshReal,
}


def make_policy(settings) -> Policy:
    return REGISTRY[settings.kind](settings)
