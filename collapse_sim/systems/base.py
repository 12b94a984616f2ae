"""What every system kind shares: the System protocol, the settings base, the registry, and
how a structure set is split across its recipes."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar, Protocol

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings


class SystemSettingsBase(KindSettings):
    #: False for systems of abstract samples (one-atom carriers of a number), which only a model
    #: of samples reads and the atomistic metric suite does not apply to
    atomistic: ClassVar[bool] = True


class System(Protocol):
    """The real world the oracle describes: an ideal structure and its perturbations.

    A kind subclasses this protocol to inherit ``species``."""

    def ideal(self) -> Atoms:
        """A representative structure: what the CLI asks the oracle to label before a run."""

    def species(self) -> list[str]:
        """Every element any structure of the system can hold, sorted: the descriptors'
        feature layout. One ideal structure shows them all unless the system has several
        compositions (molecules), which then says so here."""
        return sorted(set(self.ideal().get_chemical_symbols()))

    def perturbed(self, recipe, seed: int, calculator: Calculator | None) -> Atoms:
        """One structure made by ``recipe`` (``scenario.Recipe``), deterministic in ``seed``;
        an ``md`` recipe runs dynamics with the oracle ``calculator``."""


KINDS = Registry("system", SystemSettingsBase)


def scenario_recipes(scenario) -> Iterator[tuple[str, object]]:
    """(field path, recipe) of every recipe of ``scenario``'s real data and probes: what a
    kind's ``check(scenario)`` inspects to name the offending field."""
    sets = [("real_data", scenario.real_data)]
    if scenario.probes is not None:
        sets += [("probes.id", scenario.probes.id), ("probes.ood", scenario.probes.ood)]
        if scenario.probes.held_out is not None:  # of another system of the same kind
            sets.append(("probes.held_out", scenario.probes.held_out))
    for name, structure_set in sets:
        for i, recipe in enumerate(structure_set.recipes):
            yield f"{name}.recipes.{i}", recipe


def plan_recipes(recipes: Sequence, n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Split ``n`` structures across recipes by weight (largest remainder), each with
    its own integer seed: a list of (recipe index, seed) in a shuffled order."""
    weights = np.array([r.weight for r in recipes], dtype=float)
    exact = n * weights / weights.sum()
    counts = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - counts), kind="stable")[: n - counts.sum()]:
        counts[i] += 1
    plan = [i for i, c in enumerate(counts) for _ in range(c)]
    order = rng.permutation(n)
    seeds = rng.integers(0, 2**31 - 1, size=n)
    return [(plan[j], int(seeds[k])) for k, j in enumerate(order)]
