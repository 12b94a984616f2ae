"""Thermostatted dynamics shared by oracle-driven real data and model-driven sampling."""
from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution


def langevin(atoms: Atoms, temperature_K: float, timestep_fs: float, friction: float,
             rng: np.random.Generator) -> Langevin:
    """Maxwell-Boltzmann velocities and a Langevin integrator (friction in 1/fs), both from ``rng``.

    The centre of mass is not fixed: ASE's ``fixcm=True`` does not sample NVT exactly."""
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    return Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                    friction=friction / units.fs, rng=rng, fixcm=False)


def rattle_and_run(atoms: Atoms, recipe, rng: np.random.Generator, calculator: Calculator | None) -> Atoms:
    """The last steps of every recipe (``scenario.Recipe``), in place: a Gaussian rattle, then
    for an ``md`` recipe Langevin dynamics driven by the oracle ``calculator``; ``info`` is
    cleared so that only provenance added later travels with the structure."""
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
