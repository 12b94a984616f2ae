"""Bulk crystals (fcc Cu supercells and the like) perturbed into sampled structures."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator

from collapse_sim.md import langevin
from collapse_sim.rng import stream


class BulkSystem:
    def __init__(self, settings):
        self.settings = settings

    def ideal(self) -> Atoms:
        s = self.settings
        atoms = bulk(s.element, s.crystal, a=s.lattice_constant, cubic=s.cubic)
        return atoms.repeat(tuple(s.supercell))

    def perturbed(self, recipe, seed: int, calculator: Calculator | None) -> Atoms:
        """One structure made by ``recipe`` from the ideal crystal; deterministic in ``seed``.

        An ``md`` recipe needs the oracle ``calculator`` to drive the dynamics."""
        rng = stream(seed, "perturb")
        atoms = self.ideal()
        if recipe.strain > 0:
            eps = rng.uniform(-recipe.strain, recipe.strain, size=(3, 3))
            eps = 0.5 * (eps + eps.T)
            atoms.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
        if recipe.vacancies:
            if recipe.vacancies >= len(atoms):
                raise ValueError(f"recipe removes {recipe.vacancies} atoms from a {len(atoms)}-atom cell")
            drop = rng.choice(len(atoms), size=recipe.vacancies, replace=False)
            del atoms[sorted(drop.tolist())]
        if recipe.rattle_stdev > 0:
            atoms.positions += rng.normal(0.0, recipe.rattle_stdev, size=atoms.positions.shape)
        if recipe.method == "md":
            if calculator is None:
                raise ValueError("an md recipe needs the oracle calculator")
            atoms.calc = calculator
            langevin(atoms, recipe.temperature_K, recipe.timestep_fs, recipe.friction, rng).run(recipe.md_steps)
            atoms.calc = None
        atoms.info.clear()
        return atoms


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
