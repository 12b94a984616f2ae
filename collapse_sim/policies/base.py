"""What every policy kind shares: the lineage history it reads, the Policy base class, the
settings base (a policy's lineage name) and the registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from pydantic import Field

from collapse_sim.data.pools import Pool
from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings


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
    """Which pools the next model trains on. Asks for no fresh oracle data unless a policy
    overrides ``fresh_real_needed``."""

    def __init__(self, settings: PolicySettingsBase):
        self.settings = settings

    def fresh_real_needed(self, n_synthetic: int) -> int:
        """New oracle structures wanted, given the size of this generation's synthetic pool."""
        return 0

    def next_training_set(self, history: Sequence[GenerationData], fresh_real: Pool | None, fresh_synthetic: Pool,
                          rng: np.random.Generator) -> list[Pool]:
        raise NotImplementedError


KINDS = Registry("policy", PolicySettingsBase)

