"""Batched Langevin MD: R independent replicas advanced together, one force call per step.

Why: for a neural potential most of a force call on one small cell is fixed per-call cost;
R cells in one call cost little more than one, so one task that advances 16 replicas does
several times the replica-steps per second of 16 ASE runs (``benchmarks/bench_sampler.py``).

:class:`BatchedLangevin` is ASE's ``Langevin`` with ``fixcm=False`` (``ase/md/langevin.py``)
over replicas whose atoms are concatenated. Each replica draws its Maxwell-Boltzmann momenta,
then ``xi`` and ``eta`` every step, from its own Generator in ASE's order, and the arithmetic is
ASE's (momenta stored, velocities recomputed after the position update), so given the same
forces a replica follows its ASE trajectory (``collapse_sim.systems.md.langevin``) bit for bit.
Forces come from a :class:`~collapse_sim.models.base.BatchedPotential`: the model's own
(``model.batched_potential()``, for kinds with the ``batched_forces`` capability) or
:class:`CalculatorPotential` (any model's ASE calculator, replica after replica). This module
knows no model kind: it asks for the capability.

Same seeds, the same chunk of replicas and the same threads give bit-identical frames; which
replicas share a chunk or a lane can change float32 rounding (kernels depend on the batch), not
the statistics."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms, units

from collapse_sim.models.base import BATCHED_FORCES, BatchedForces, BatchedPotential, capabilities
from collapse_sim.runtime.executor import torch_threads
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.base import ModelRef
from collapse_sim.samplers.checks import exploded, segments


# --------------------------------------------------------------------------------------------
# potentials
# --------------------------------------------------------------------------------------------
class CalculatorPotential:
    """Any model's ASE calculator, replica after replica: the batched engine for models without a
    batched force path, and the integrator's test against ASE with identical forces."""

    def __init__(self, model):
        self.model = model

    def bind(self, structures: Sequence[Atoms]) -> BatchedForces:
        calc = self.model.calculator()
        replicas = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in structures]
        ptr = np.cumsum([0] + [len(a) for a in replicas])

        def energies_and_forces(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            energies, forces = [], []
            for atoms, lo, hi in zip(replicas, ptr[:-1], ptr[1:]):  # one calculation per replica
                atoms.positions = positions[lo:hi]
                energies.append(calc.get_potential_energy(atoms))
                forces.append(calc.get_forces(atoms))
            return np.array(energies), np.concatenate(forces)

        return energies_and_forces


def batched_potential(model) -> BatchedPotential:
    """The model's own batched forces if it declares them, else its ASE calculator replica by replica."""
    return model.batched_potential() if BATCHED_FORCES in capabilities(model) else CalculatorPotential(model)


# --------------------------------------------------------------------------------------------
# integrator
# --------------------------------------------------------------------------------------------
class BatchedLangevin:
    """ASE's Langevin (``fixcm=False``) over R replicas. ``positions``, ``momenta`` and ``forces``
    are (M, 3), replica r's atoms at rows ``ptr[r]:ptr[r + 1]``; ``energies`` is (R,); ``evaluate``
    is the potential bound to the replicas.
    ``temperature_K``, ``timestep_fs`` and ``friction`` (1/fs) as ``collapse_sim.systems.md.langevin``."""

    def __init__(self, potential: BatchedPotential, structures: Sequence[Atoms], temperature_K: float,
                 timestep_fs: float, friction: float, rngs: Sequence[np.random.Generator]):
        if len(structures) != len(rngs) or not structures:
            raise ValueError(f"need one Generator per replica and at least one replica, got "
                             f"{len(structures)} structures and {len(rngs)} Generators")
        self.potential = potential
        self.structures = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in structures]
        self.rngs = list(rngs)
        self.dt = timestep_fs * units.fs
        self.temperature = units.kB * temperature_K  # eV
        self.friction = friction / units.fs
        self._layout()
        self.positions = np.concatenate([a.positions for a in self.structures])
        # Maxwell-Boltzmann as ase.md.velocitydistribution._maxwellboltzmanndistribution draws it
        self.momenta = self._standard_normal() * np.sqrt(self.masses * self.temperature)
        self.energies, self.forces = self.evaluate(self.positions)

    def _layout(self) -> None:
        """Per-atom arrays from ``structures``; the coefficients are ASE's ``Langevin.updatevars``."""
        self.ptr = np.cumsum([0] + [len(a) for a in self.structures])
        self.masses = np.concatenate([a.get_masses() for a in self.structures])[:, None]
        dt, fr = self.dt, self.friction
        sigma = np.sqrt(2 * self.temperature * fr / self.masses)
        self.c1 = dt / 2.0 - dt * dt * fr / 8.0
        self.c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
        self.c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
        self.c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
        self.c4 = fr / 2.0 * self.c5
        self.evaluate = self.potential.bind(self.structures)

    def _standard_normal(self) -> np.ndarray:
        """(M, 3) normals; replica r's block from its own Generator, as ASE draws (n_r, 3)."""
        out = np.empty((self.ptr[-1], 3))
        for rng, lo, hi in zip(self.rngs, self.ptr[:-1], self.ptr[1:]):
            rng.standard_normal(out=out[lo:hi])
        return out

    def step(self) -> None:
        """``ase.md.langevin.Langevin.step`` (fixcm=False, no constraints), operation for operation."""
        xi = self._standard_normal()
        eta = self._standard_normal()
        rnd_pos = self.c5 * eta
        rnd_vel = self.c3 * xi - self.c4 * eta
        v = self.momenta / self.masses
        v += self.c1 * self.forces / self.masses - self.c2 * v + rnd_vel
        x = self.positions
        self.positions = x + self.dt * v + rnd_pos
        v = (self.positions - x - rnd_pos) / self.dt
        self.energies, self.forces = self.evaluate(self.positions)
        v += self.c1 * self.forces / self.masses - self.c2 * v + rnd_vel
        self.momenta = v * self.masses

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def replica(self, r: int) -> Atoms:
        """Replica r now, as a new Atoms (numbers, positions, cell, pbc)."""
        a, lo, hi = self.structures[r], self.ptr[r], self.ptr[r + 1]
        return Atoms(a.numbers, self.positions[lo:hi].copy(), cell=a.cell.copy(), pbc=a.pbc)

    def replica_forces(self, r: int) -> np.ndarray:
        return self.forces[self.ptr[r]:self.ptr[r + 1]]

    def keep(self, replicas: np.ndarray) -> None:
        """Continue with the replicas where ``replicas`` (bool, R) is True; the others stop."""
        atoms = np.repeat(replicas, np.diff(self.ptr))
        self.structures = [a for a, k in zip(self.structures, replicas) if k]
        self.rngs = [g for g, k in zip(self.rngs, replicas) if k]
        self.positions, self.momenta, self.forces = self.positions[atoms], self.momenta[atoms], self.forces[atoms]
        self.energies = self.energies[replicas]
        self._layout()


# --------------------------------------------------------------------------------------------
# the batched engine
# --------------------------------------------------------------------------------------------
def run_replicas(potential: BatchedPotential, starts: Sequence[Atoms], settings, seeds: Sequence[int]) -> list[dict]:
    """``run_replica`` for many replicas at once: the same seeds' random streams, checks and
    frames, one result {'frames', 'exploded', 'steps'} per start. An exploded replica stops at
    the check that finds it; the others go on."""
    if not starts:
        return []
    md = BatchedLangevin(potential, starts, settings.temperature_K, settings.timestep_fs, settings.friction,
                         [stream(seed, "langevin") for seed in seeds])
    results = [{"frames": [], "exploded": False, "steps": 0} for _ in starts]
    running = list(range(len(starts)))  # the result index of each replica md still advances
    for n, keep in segments(settings):
        md.run(n)
        healthy = np.ones(len(running), dtype=bool)
        for k, r in enumerate(running):
            results[r]["steps"] += n
            atoms = md.replica(k)
            if exploded(atoms, md.replica_forces(k), md.energies[k], settings):
                results[r]["exploded"], healthy[k] = True, False
            elif keep:
                results[r]["frames"].append(atoms)
        if not healthy.all():
            running = [r for r, h in zip(running, healthy) if h]
            if not running:
                break
            md.keep(healthy)
    return results


def run_replica_chunk(model_ref: ModelRef, starts: Sequence[Atoms], settings, seeds: Sequence[int],
                      cpus: float = 1) -> list[dict]:
    """The batched engine's task: the model loaded for ``cpus`` torch threads, ``run_replicas``."""
    from collapse_sim import models

    model = models.load(model_ref.settings, model_ref.path, threads=torch_threads(cpus))
    return run_replicas(batched_potential(model), starts, settings, seeds)
