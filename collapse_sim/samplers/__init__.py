"""Samplers: make new structures with a trained model (the loop then labels them with
that same model). Protocol::

    sample(model_ref, starts, n, seed, executor) -> SampleResult

``model_ref`` is a ``ModelRef`` (settings + file) so replicas can load the model in any
Ray worker; a batched multi-replica sampler can replace the ASE one without loop changes.
``starts`` is the previous generation's training set unless the sampler defines
``starts(history) -> list[Atoms]`` (see ``starting_structures``)."""
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


def make_sampler(settings, cpus_per_task: float = 1, gpus_per_task: float = 0):
    """The sampler of ``settings``; its tasks (MD replicas or replica chunks) reserve the given resources."""
    if settings.kind == "langevin":
        from collapse_sim.samplers.langevin import LangevinSampler

        return LangevinSampler(settings, cpus_per_task, gpus_per_task)
    if settings.kind == "rattle":
        from collapse_sim.samplers.rattle import RattleSampler

        return RattleSampler(settings)
    if settings.kind == "fixed-design":
        from collapse_sim.samplers.fixed_design import FixedDesignSampler

        return FixedDesignSampler(settings)
    if settings.kind == "model-samples":
        from collapse_sim.samplers.model_samples import ModelSamplesSampler

        return ModelSamplesSampler(settings)
    raise KeyError(f"unknown sampler kind {settings.kind!r}")


def starting_structures(sampler, history) -> list[Atoms]:
    """What ``sampler.sample`` starts from: ``sampler.starts(history)`` if it defines it,
    else the structures of the lineage's latest training set."""
    custom = getattr(sampler, "starts", None)
    if custom is not None:
        return custom(history)
    return [atoms for pool in history[-1].train for atoms in pool.structures]
