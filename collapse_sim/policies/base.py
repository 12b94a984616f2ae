"""What every policy kind shares: the lineage history it reads, what is offered to it, what it
returns, the Policy base class, the settings base (a policy's lineage name) and the registry."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

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


@dataclass(frozen=True)
class OracleRequest:
    """What a policy asks of the oracle for one generation, decided from the synthetic pool before
    any oracle label exists. ``note``: what the policy decided on the way (``active``'s trust
    window), handed back to ``select`` with the labels, so no state stays on the policy."""

    fresh_real: int = 0  # new real structures to label
    fresh_real_labeller: str = "oracle"  # who labels them: "oracle", or "reference_oracle" (the probes' labeller)
    indices: list[int] = field(default_factory=list)  # distinct indices into the synthetic pool to label
    verifier: str = "oracle"  # who labels ``indices``: "oracle", or "teacher" (the scenario's frozen teacher)
    note: Any = None


@dataclass(frozen=True)
class Offered:
    """The pools offered to one generation: the synthetic pool model g − 1 sampled and labelled,
    the fresh real data asked for (None without), and ``checked``: index into ``synthetic`` -> a
    copy of that structure labelled by the oracle (or the teacher, as the request's ``verifier``
    says; provenance kept, ``origin`` still "synthetic", ``info[ORACLE_CHECKED]`` = who labelled
    it), one per requested index the oracle could label; the model-labelled original
    stays in ``synthetic``, so a policy compares the two label sets index by index. ``failed``:
    the requested indices whose oracle calculation failed (no label: a policy drops them, as
    active-learning workflows drop structures their DFT cannot converge on)."""

    synthetic: Pool
    fresh_real: Pool | None = None
    checked: dict[int, Atoms] = field(default_factory=dict)
    failed: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Selection:
    """A policy's answer: the pools the next model trains on and, for a policy that filters the
    synthetic pool, what became of it (``policy_kept``, ``policy_oracle_labelled``,
    ``policy_rejected``; meanings in ``measure.catalogue``), written into the metrics row."""

    pools: list[Pool]
    counts: dict[str, int] = field(default_factory=dict)


class PolicySettingsBase(KindSettings):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="lineage name; default: kind")

    @property
    def label(self) -> str:
        return self.name or self.kind  # type: ignore[attr-defined]


class Policy:
    """Which pools the next model trains on: a function of the settings and the arguments only,
    so a resumed lineage, a retried task and a fresh instance decide alike. Two calls per
    generation, because the second needs the oracle's answers to the first: ``request`` says what
    the oracle should label (nothing unless overridden), ``select`` picks the training set from
    what was offered. Whatever ``select`` needs from ``request`` travels in the request's ``note``."""

    def __init__(self, settings: PolicySettingsBase):
        self.settings = settings

    def request(self, history: Sequence[GenerationData], synthetic: Pool, rng: np.random.Generator,
                predict_with: PredictWith | None = None) -> OracleRequest:
        """The oracle labels wanted for this generation (each costs one oracle call): new real
        structures, and synthetic structures (indices into ``synthetic``) that reach ``select`` as
        ``offered.checked``. ``predict_with(generation, structures)``: the lineage's model of that
        generation (any committed one, up to ``synthetic.generation``, the model that sampled the
        pool) labels the structures (no oracle call; ``active``'s committee)."""
        return OracleRequest()

    def select(self, history: Sequence[GenerationData], offered: Offered, request: OracleRequest,
               rng: np.random.Generator) -> Selection:
        """The training set of this generation, from the lineage's ``history`` (generation 0
        first) and what was ``offered``; ``request`` is what ``request`` returned for it."""
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
