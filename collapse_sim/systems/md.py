"""Thermostatted dynamics shared by oracle-driven real data and model-driven sampling."""
from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution


def langevin(atoms: Atoms, temperature_K: float, timestep_fs: float, friction: float, rng: np.random.Generator) -> Langevin:
    """Maxwell-Boltzmann velocities and a Langevin integrator (friction in 1/fs), both from ``rng``.

    The centre of mass is not fixed: ASE's ``fixcm=True`` does not sample NVT exactly."""
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature_K, rng=rng)
    return Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                    friction=friction / units.fs, rng=rng, fixcm=False)
