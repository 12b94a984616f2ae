"""Bulk crystals (fcc Cu supercells and the like) perturbed into sampled structures."""
from __future__ import annotations

from typing import Literal

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from pydantic import Field, field_validator

from collapse_sim.runtime.rng import stream
from collapse_sim.systems.base import KINDS, System, SystemSettingsBase, scenario_recipes
from collapse_sim.systems.md import rattle_and_run


class BulkSettings(SystemSettingsBase):
    """A periodic crystal: the 'real world' the oracle describes."""

    kind: Literal["bulk"] = "bulk"
    element: str = Field("Cu", description="chemical symbol")
    crystal: Literal["fcc", "bcc", "hcp", "sc", "diamond"] = Field("fcc", description="as ase.build.bulk names it")
    lattice_constant: float = Field(3.6, gt=0, description="Å: lattice constant")
    cubic: bool = Field(True, description="the cubic (conventional) cell rather than the primitive one")
    supercell: tuple[int, int, int] = Field((2, 2, 2), description="repeats of the cell along its three axes")

    @field_validator("element")
    @classmethod
    def _known_element(cls, value: str) -> str:
        from ase.data import atomic_numbers

        if value not in atomic_numbers:
            raise ValueError(f"unknown chemical symbol {value!r}")
        return value

    @field_validator("supercell")
    @classmethod
    def _positive_repeats(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if min(value) < 1:
            raise ValueError("supercell repeats must be >= 1")
        return value

    def check(self, scenario) -> None:
        """A crystal has one structure to start from: no molecule pool to choose."""
        for where, recipe in scenario_recipes(scenario):
            if recipe.molecules != "id":
                raise ValueError(f"{where}.molecules: {recipe.molecules!r} chooses a molecule pool; "
                                 "only system.kind molecules has one")


class BulkSystem(System):
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
        return rattle_and_run(atoms, recipe, rng, calculator)


KINDS.register(BulkSettings, BulkSystem)
