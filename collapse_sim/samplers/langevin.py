"""Langevin MD driven by a trained model, ``replicas`` independent trajectories per generation.

Two engines (``LangevinSettings.engine``), fed the same start picks and per-replica seeds:
``batched`` advances ``replicas_per_task`` replicas together in one task with one force call
per step (``collapse_sim.samplers.batched_langevin``); ``ase`` runs one ASE trajectory per
replica (a task each), the reference the batched engine is tested against.

A replica whose dynamics explode (atoms closer than ``min_distance``, forces above
``max_force``, non-finite values) stops; its frames after the last healthy check are
dropped and the failure is counted: a finding about the model, not a crash."""
from __future__ import annotations

from typing import Literal

import numpy as np
from ase import Atoms
from pydantic import Field

from collapse_sim.runtime.executor import torch_threads
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.base import KINDS, ModelRef, Sampler, SampleResult
from collapse_sim.samplers.checks import exploded, segments
from collapse_sim.settings_base import KindSettings
from collapse_sim.systems.md import langevin


class LangevinSettings(KindSettings):
    """Langevin MD driven by the previous generation's model, snapshots every ``interval`` steps."""

    kind: Literal["langevin"]
    temperature_K: float = Field(600.0, gt=0, description="K: temperature of the dynamics")
    timestep_fs: float = Field(2.0, gt=0, description="fs: time step")
    friction: float = Field(0.02, gt=0, description="1/fs: Langevin friction")
    steps: int = Field(100, ge=1, description="MD steps per replica after equilibration")
    equilibration_steps: int = Field(20, ge=0, description="MD steps per replica before the first kept snapshot")
    interval: int = Field(10, ge=1, description="steps between kept snapshots")
    replicas: int = Field(4, ge=1, description="independent trajectories per generation")
    min_distance: float = Field(0.6, gt=0, description="Å; closer atoms mean the MD exploded")
    max_force: float = Field(50.0, gt=0, description="eV/Å; larger forces mean the MD exploded")
    engine: Literal["batched", "ase"] = Field(
        "batched", description="batched: replicas_per_task replicas share one force call per step "
                               "(samplers.batched_langevin); ase: one ASE Langevin run per replica (the reference)")
    replicas_per_task: int = Field(16, ge=1, description="replicas advanced together in one task (engine batched)")


class _Exploded(Exception):
    pass


def run_replica(model_ref: ModelRef, start: Atoms, settings, seed: int, cpus: float = 1) -> dict:
    """One ASE trajectory; returns {'frames': [...], 'exploded': bool, 'steps': int}."""
    from collapse_sim import models

    model = models.load(model_ref.settings, model_ref.path, threads=torch_threads(cpus))
    rng = stream(seed, "langevin")
    atoms = Atoms(start.numbers, start.positions, cell=start.cell, pbc=start.pbc)
    atoms.calc = model.calculator()
    dyn = langevin(atoms, settings.temperature_K, settings.timestep_fs, settings.friction, rng)
    frames: list[Atoms] = []
    steps = 0
    try:
        for n, keep in segments(settings):
            dyn.run(n)
            steps += n
            if exploded(atoms, atoms.get_forces(), atoms.get_potential_energy(), settings):
                raise _Exploded
            if keep:
                frames.append(Atoms(atoms.numbers, atoms.positions.copy(), cell=atoms.cell.copy(), pbc=atoms.pbc))
    except (_Exploded, FloatingPointError, ValueError):
        return {"frames": frames, "exploded": True, "steps": steps}
    return {"frames": frames, "exploded": False, "steps": steps}


class LangevinSampler(Sampler):
    """``cpus_per_task``: what each task declares and uses as torch threads (a replica with
    engine ase, a chunk of ``replicas_per_task`` replicas with engine batched)."""

    def sample(self, model_ref: ModelRef, starts, n, seed, executor) -> SampleResult:
        s = self.settings
        rng = stream(seed, "langevin-starts")
        picks = rng.integers(0, len(starts), size=s.replicas)
        seeds = [int(x) for x in rng.integers(0, 2**31 - 1, size=s.replicas)]
        replica_starts = [starts[int(i)] for i in picks]
        if s.engine == "ase":
            jobs = [(model_ref, start, s, seed_, self.cpus_per_task) for start, seed_ in zip(replica_starts, seeds)]
            results = executor.map(_run_replica_job, jobs, cpus=self.cpus_per_task, gpus=self.gpus_per_task)
        else:
            k = s.replicas_per_task
            jobs = [(model_ref, replica_starts[i:i + k], s, seeds[i:i + k], self.cpus_per_task)
                    for i in range(0, s.replicas, k)]
            chunks = executor.map(_run_chunk_job, jobs, cpus=self.cpus_per_task, gpus=self.gpus_per_task)
            results = [r for chunk in chunks for r in chunk]
        frames = [f for r in results for f in r["frames"]]
        if len(frames) > n:
            keep = np.sort(rng.choice(len(frames), size=n, replace=False))
            frames = [frames[i] for i in keep]
        failures = sum(r["exploded"] for r in results)
        return SampleResult(frames, failures)


def _run_replica_job(job) -> dict:
    return run_replica(*job)


def _run_chunk_job(job) -> list[dict]:
    from collapse_sim.samplers.batched_langevin import run_replica_chunk

    return run_replica_chunk(*job)


KINDS.register(LangevinSettings, LangevinSampler)
