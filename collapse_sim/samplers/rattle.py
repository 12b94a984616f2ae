"""Rattling: Gaussian displacements of starting structures; no dynamics, never explodes."""
from __future__ import annotations

from ase import Atoms

from collapse_sim.rng import stream
from collapse_sim.samplers import SampleResult


class RattleSampler:
    def __init__(self, settings):
        self.settings = settings

    def sample(self, model_ref, starts, n, seed, executor) -> SampleResult:
        rng = stream(seed, "rattle")
        out = []
        for i in rng.integers(0, len(starts), size=n):
            start = starts[int(i)]
            atoms = Atoms(start.numbers, start.positions, cell=start.cell, pbc=start.pbc)
            atoms.positions += rng.normal(0.0, self.settings.stdev, size=atoms.positions.shape)
            out.append(atoms)
        return SampleResult(out)
