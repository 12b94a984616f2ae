"""Samplers: make new structures with a trained model (the loop then labels them with
that same model). Protocol::

    sample(model_ref, starts, n, seed, executor) -> SampleResult

``model_ref`` is a ``ModelRef`` (settings + file) so replicas can load the model in any
Ray worker; a batched multi-replica sampler can replace the ASE one without loop changes."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ase import Atoms


@dataclass(frozen=True)
class ModelRef:
    settings: object
    path: Path


@dataclass
class SampleResult:
    structures: list[Atoms]
    failures: int = 0  # replicas whose dynamics exploded (a finding, not an error)
    details: dict = field(default_factory=dict)


def make_sampler(settings, cpus_per_replica: float = 1):
    if settings.kind == "langevin":
        from collapse_sim.samplers.langevin import LangevinSampler

        return LangevinSampler(settings, cpus_per_replica)
    if settings.kind == "rattle":
        from collapse_sim.samplers.rattle import RattleSampler

        return RattleSampler(settings)
    raise KeyError(f"unknown sampler kind {settings.kind!r}")
