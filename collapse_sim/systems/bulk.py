"""Bulk crystals (fcc Cu supercells and the like) perturbed into sampled structures."""
from __future__ import annotations

from typing import Literal

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator
from ase.data import chemical_symbols
from pydantic import Field, field_validator, model_validator

from collapse_sim.runtime.rng import stream
from collapse_sim.systems.base import KINDS, System, SystemSettingsBase, scenario_recipes
from collapse_sim.systems.md import rattle_and_run

_SYMBOLS = frozenset(chemical_symbols[1:])
#: ase.build.bulk's two-element structures, whose ``element`` is a formula
COMPOUNDS = ("rocksalt", "zincblende", "cesiumchloride", "fluorite", "wurtzite")


class BulkSettings(SystemSettingsBase):
    """A periodic crystal: the 'real world' the oracle describes."""

    kind: Literal["bulk"] = "bulk"
    element: str = Field("Cu", description="chemical symbol; for a two-element crystal (rocksalt, zincblende, "
                                           "cesiumchloride, fluorite, wurtzite) its formula, e.g. MgO or NaCl")
    crystal: Literal["fcc", "bcc", "hcp", "sc", "diamond", "rocksalt", "zincblende", "cesiumchloride", "fluorite",
                     "wurtzite"] = Field("fcc", description="as ase.build.bulk names it")
    lattice_constant: float = Field(3.6, gt=0, description="Å: lattice constant")
    cubic: bool = Field(True, description="the cubic (conventional) cell rather than the primitive one")
    supercell: tuple[int, int, int] = Field((2, 2, 2), description="repeats of the cell along its three axes")

    @field_validator("element")
    @classmethod
    def _known_elements(cls, value: str) -> str:
        from ase.formula import Formula

        try:
            symbols = list(Formula(value))
        except ValueError:
            raise ValueError(f"unknown chemical symbol or formula {value!r}") from None
        if not symbols or any(s not in _SYMBOLS for s in symbols):
            raise ValueError(f"unknown chemical symbol or formula {value!r}")
        return value

    @model_validator(mode="after")
    def _formula_fits_crystal(self) -> BulkSettings:
        from ase.formula import Formula

        elements = len(Formula(self.element).count())
        if self.crystal in COMPOUNDS and elements != 2:
            raise ValueError(f"element: a {self.crystal} crystal needs a two-element formula such as MgO, "
                             f"not {self.element!r}")
        if self.crystal not in COMPOUNDS and self.element not in _SYMBOLS:
            raise ValueError(f"element: a {self.crystal} crystal is one chemical symbol, not {self.element!r} "
                             f"(two-element crystals: {', '.join(COMPOUNDS)})")
        if self.cubic and not _builds(self, cubic=True):  # hexagonal crystals have no cubic cell
            raise ValueError(f"cubic: {self.crystal} has no cubic cell; set cubic: false"
                             if _builds(self, cubic=False) else
                             f"crystal: ase.build.bulk cannot build {self.element} as {self.crystal}")
        return self

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


def _builds(settings: BulkSettings, cubic: bool) -> bool:
    """Whether ase.build.bulk makes the crystal's cell."""
    from ase.build import bulk

    try:
        bulk(settings.element, settings.crystal, a=settings.lattice_constant, cubic=cubic)
    except (RuntimeError, ValueError, KeyError):
        return False
    return True


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
