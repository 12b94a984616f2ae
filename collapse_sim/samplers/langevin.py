"""Langevin MD driven by a trained model, one ASE trajectory per replica (a Ray task each).

A replica whose dynamics explode (atoms closer than ``min_distance``, forces above
``max_force``, non-finite values) stops; its frames after the last healthy check are
dropped and the failure is counted: a finding about the model, not a crash."""
from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from collapse_sim.executor import torch_threads
from collapse_sim.md import langevin
from collapse_sim.rng import stream
from collapse_sim.samplers import ModelRef, SampleResult


class _Exploded(Exception):
    pass


def exploded(atoms: Atoms, forces: np.ndarray, energy: float, settings) -> bool:
    if not (np.isfinite(energy) and np.isfinite(forces).all() and np.isfinite(atoms.positions).all()):
        return True
    if np.abs(forces).max(initial=0.0) > settings.max_force:
        return True
    return len(neighbor_list("i", atoms, settings.min_distance)) > 0


def run_replica(model_ref: ModelRef, start: Atoms, settings, seed: int, cpus: float = 1) -> dict:
    """One trajectory; returns {'frames': [...], 'exploded': bool, 'steps': int}."""
    from collapse_sim.models import load_model

    model = load_model(model_ref.settings, model_ref.path, threads=torch_threads(cpus))
    rng = stream(seed, "langevin")
    atoms = Atoms(start.numbers, start.positions, cell=start.cell, pbc=start.pbc)
    atoms.calc = model.calculator()
    dyn = langevin(atoms, settings.temperature_K, settings.timestep_fs, settings.friction, rng)
    frames: list[Atoms] = []

    def check(keep: bool) -> None:
        forces = atoms.get_forces()
        if exploded(atoms, forces, atoms.get_potential_energy(), settings):
            raise _Exploded
        if keep:
            frames.append(Atoms(atoms.numbers, atoms.positions.copy(), cell=atoms.cell.copy(), pbc=atoms.pbc))

    steps = 0
    try:
        for step in range(0, settings.equilibration_steps, settings.interval):
            n = min(settings.interval, settings.equilibration_steps - step)
            dyn.run(n)
            steps += n
            check(keep=False)
        for _ in range(settings.steps // settings.interval):
            dyn.run(settings.interval)
            steps += settings.interval
            check(keep=True)
    except (_Exploded, FloatingPointError, ValueError):
        return {"frames": frames, "exploded": True, "steps": steps}
    return {"frames": frames, "exploded": False, "steps": steps}


class LangevinSampler:
    def __init__(self, settings, cpus_per_replica: float = 1):
        self.settings, self.cpus_per_replica = settings, cpus_per_replica

    def sample(self, model_ref: ModelRef, starts, n, seed, executor) -> SampleResult:
        rng = stream(seed, "langevin-starts")
        picks = rng.integers(0, len(starts), size=self.settings.replicas)
        seeds = rng.integers(0, 2**31 - 1, size=self.settings.replicas)
        jobs = [(model_ref, starts[int(i)], self.settings, int(s), self.cpus_per_replica) for i, s in zip(picks, seeds)]
        results = executor.map(_run_replica_job, jobs, cpus=self.cpus_per_replica)
        frames = [f for r in results for f in r["frames"]]
        if len(frames) > n:
            keep = np.sort(rng.choice(len(frames), size=n, replace=False))
            frames = [frames[i] for i in keep]
        failures = sum(r["exploded"] for r in results)
        return SampleResult(frames, failures, {"md_steps": sum(r["steps"] for r in results)})


def _run_replica_job(job) -> dict:
    return run_replica(*job)
