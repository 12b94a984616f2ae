"""What every policy kind shares: the lineage history it reads, the Policy base class, the
settings base (a policy's lineage name) and the registry."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from pydantic import Field

from collapse_sim.data.pools import Pool
from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings

#: ``predict_with(generation, structures) -> labelled copies``: a lineage's committed model predicts
PredictWith = Callable[[int, Sequence[Atoms]], list[Atoms]]


@dataclass
class GenerationData:
    generation: int
    train: list[Pool]
    synthetic: Pool | None = None  # fresh synthetic pool offered to this generation
    fresh_real: Pool | None = None  # fresh oracle pool offered to this generation


class PolicySettingsBase(KindSettings):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="lineage name; default: kind")

    @property
    def label(self) -> str:
        return self.name or self.kind  # type: ignore[attr-defined]


class Policy:
    """Which pools the next model trains on. Its oracle needs are declared up front: it asks
    for no fresh oracle data unless it overrides ``fresh_real_needed``, and for no oracle
    labels of synthetic structures unless it overrides ``oracle_requests``.

    A policy that filters the synthetic pool reports what it did in ``last_counts`` (set by
    ``next_training_set``; the loop writes it into the metrics row): ``policy_kept``,
    ``policy_oracle_labelled``, ``policy_rejected`` (meanings in ``measure.catalogue``)."""

    def __init__(self, settings: PolicySettingsBase):
        self.settings = settings
        self.last_counts: dict[str, int] = {}

    def fresh_real_needed(self, n_synthetic: int) -> int:
        """New oracle structures wanted, given the size of this generation's synthetic pool."""
        return 0

    def oracle_requests(self, synthetic: Pool, rng: np.random.Generator,
                        predict_with: PredictWith | None = None) -> list[int]:
        """Distinct indices into this generation's synthetic pool whose structures the oracle
        should label (each costs one oracle call); they reach ``next_training_set`` as ``checked``.
        ``predict_with(generation, structures)``: the lineage's model of that generation (any
        committed one, up to ``synthetic.generation``, the model that sampled the pool) labels
        the structures (no oracle call; ``active``'s committee)."""
        return []

    def next_training_set(self, history: Sequence[GenerationData], fresh_real: Pool | None, fresh_synthetic: Pool,
                          checked: dict[int, Atoms], rng: np.random.Generator) -> list[Pool]:
        """``checked``: index into ``fresh_synthetic`` -> an oracle-labelled copy of that structure
        (provenance kept, ``origin`` still "synthetic", ``info[ORACLE_CHECKED]`` = the oracle), one
        per ``oracle_requests`` index; the model-labelled original stays in ``fresh_synthetic``,
        so a policy compares the two label sets index by index."""
        raise NotImplementedError


def checked_pool(synthetic: Pool, checked: dict[int, Atoms]) -> Pool:
    """The oracle-labelled copies as a pool of the synthetic pool's key, in pool order."""
    return Pool(synthetic.origin, synthetic.generation, tuple(checked[i] for i in sorted(checked)))



def random_fraction(n: int, fraction: float, rng: np.random.Generator) -> list[int]:
    """round(``fraction`` × n) distinct indices of 0..n-1, drawn without replacement, sorted."""
    return sorted(rng.choice(n, size=int(round(fraction * n)), replace=False).tolist())


def subset_pools(pools: Sequence[Pool], chosen: np.ndarray) -> list[Pool]:
    """The pools cut down to ``chosen`` (sorted indices into their concatenation); emptied pools dropped."""
    sizes = np.array([len(p) for p in pools])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for pool, start, stop in zip(pools, offsets[:-1], offsets[1:]):
        local = chosen[(chosen >= start) & (chosen < stop)] - start
        if len(local):
            out.append(pool.subset(local.tolist()))
    return out


KINDS = Registry("policy", PolicySettingsBase)
