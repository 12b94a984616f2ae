"""What every sampler kind shares: the Sampler base class, its inputs and result, and the registry."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings


@dataclass(frozen=True)
class ModelRef:
    settings: object
    path: Path


@dataclass
class SampleResult:
    structures: list[Atoms]
    failures: int = 0  # replicas whose dynamics exploded (a finding, not an error)


class Sampler:
    """``sample(model_ref, starts, n, seed, executor) -> SampleResult``; the tasks a sampler
    submits (MD replicas or replica chunks) reserve ``cpus_per_task`` and ``gpus_per_task``."""

    def __init__(self, settings: KindSettings, cpus_per_task: float = 1, gpus_per_task: float = 0):
        self.settings, self.cpus_per_task, self.gpus_per_task = settings, cpus_per_task, gpus_per_task

    def sample(self, model_ref: ModelRef, starts: list[Atoms], n: int, seed: int, executor) -> SampleResult:
        raise NotImplementedError


KINDS = Registry("sampler", KindSettings)


def starting_structures(sampler, history) -> list[Atoms]:
    """What ``sampler.sample`` starts from: ``sampler.starts(history)`` if it defines it,
    else the structures of the lineage's latest training set."""
    custom = getattr(sampler, "starts", None)
    if custom is not None:
        return custom(history)
    return [atoms for pool in history[-1].train for atoms in pool.structures]
