"""Rattling: Gaussian displacements of starting structures; no dynamics, never explodes."""
from __future__ import annotations

from typing import Literal

from ase import Atoms
from pydantic import Field

from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.base import KINDS, Sampler, SampleResult
from collapse_sim.settings_base import KindSettings


class RattleSettings(KindSettings):
    """Gaussian displacements of structures from the previous training set."""

    kind: Literal["rattle"]
    stdev: float = Field(0.05, gt=0, description="Å: standard deviation of the Gaussian displacements")


class RattleSampler(Sampler):
    def sample(self, model_ref, starts, n, seed, executor) -> SampleResult:
        rng = stream(seed, "rattle")
        out = []
        for i in rng.integers(0, len(starts), size=n):
            start = starts[int(i)]
            atoms = Atoms(start.numbers, start.positions, cell=start.cell, pbc=start.pbc)
            atoms.positions += rng.normal(0.0, self.settings.stdev, size=atoms.positions.shape)
            out.append(atoms)
        return SampleResult(out)


KINDS.register(RattleSettings, RattleSampler)
