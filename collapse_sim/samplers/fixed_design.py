"""Fixed design: the synthetic structures of every generation are exactly generation 0's real
training structures (the design X of the linear-regression collapse laws), unlabelled; the
loop then labels them with the previous model (plus ``synthetic.energy_noise``)."""
from __future__ import annotations

from typing import Literal

from ase import Atoms

from collapse_sim.samplers.base import KINDS, Sampler, SampleResult
from collapse_sim.settings_base import KindSettings


def real_generation_zero(history) -> list[Atoms]:
    """The real structures of generation 0's training set, in their stored order."""
    return [a for pool in history[0].train if pool.origin == "real" and pool.generation == 0 for a in pool.structures]


class FixedDesignSettings(KindSettings):
    """Exactly generation 0's real training structures (the fixed design X), relabelled by the model.

    Needs ``synthetic.n_structures`` = ``real_data.n_structures``."""

    kind: Literal["fixed-design"]

    def check(self, scenario) -> None:
        n = scenario.real_data.n_structures
        if scenario.synthetic.n_structures != n:
            raise ValueError(f"synthetic.n_structures: fixed-design relabels the {n} real "
                             f"generation-0 structures, so it must be {n}")


class FixedDesignSampler(Sampler):
    def starts(self, history) -> list[Atoms]:
        """Overrides the loop's default starting structures (the previous training set)."""
        return real_generation_zero(history)

    def sample(self, model_ref, starts, n, seed, executor) -> SampleResult:
        if n != len(starts):
            raise ValueError(f"fixed-design sampling needs synthetic.n_structures = {len(starts)} "
                             f"(the real generation-0 structures), got {n}")
        return SampleResult([Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in starts])


KINDS.register(FixedDesignSettings, FixedDesignSampler)
