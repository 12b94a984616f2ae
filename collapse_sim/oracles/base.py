"""What every oracle kind shares: the Oracle protocol, the settings base and the registry."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field

from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings


class OracleSettingsBase(KindSettings):
    chunk_size: int = Field(25, ge=1, description="structures per labelling task")
    energy_noise: float = Field(0.0, ge=0,
                                description="eV per structure: std of Gaussian noise added to every oracle energy")


class Oracle(Protocol):
    """Ground-truth labels. ``calculator()`` also drives the systems' ``md`` recipes."""

    def calculator(self) -> Calculator: ...

    def label(self, structures: Sequence[Atoms], calculator: Calculator | None = None,
              noise_seeds: Sequence[int] | None = None) -> list[Atoms]: ...

    def check(self, atoms: Atoms) -> None:
        """ValueError, one readable line, if the oracle cannot label ``atoms``."""


KINDS = Registry("oracle", OracleSettingsBase)
