"""Samplers: make new structures with a trained model (the loop then labels them with
that same model); one module per kind. Protocol (``samplers.base.Sampler``)::

    sample(model_ref, starts, n, seed, executor) -> SampleResult

``model_ref`` is a ``ModelRef`` (settings + file) so replicas can load the model in any
Ray worker; a batched multi-replica sampler can replace the ASE one without loop changes.
``starts`` is the previous generation's training set unless the sampler defines
``starts(history) -> list[Atoms]`` (see ``starting_structures``)."""
from collapse_sim.samplers.base import KINDS, ModelRef, Sampler, SampleResult, starting_structures
from collapse_sim.settings_base import KindSettings, kind_union

# each kind module registers its kind when imported: a new kind is a new module and a line here
from collapse_sim.samplers import langevin  # noqa: F401  isort: skip
from collapse_sim.samplers import rattle  # noqa: F401  isort: skip
from collapse_sim.samplers import fixed_design  # noqa: F401  isort: skip
from collapse_sim.samplers import model_samples  # noqa: F401  isort: skip

#: every sampler kind (``kind`` is required)
SamplerSettings = kind_union(KINDS)


def make(settings: KindSettings, cpus_per_task: float = 1, gpus_per_task: float = 0) -> Sampler:
    """The sampler of ``settings``; its tasks (MD replicas or replica chunks) reserve the given resources."""
    return KINDS.make(settings, cpus_per_task, gpus_per_task)


__all__ = ["KINDS", "ModelRef", "SampleResult", "Sampler", "SamplerSettings", "make", "starting_structures"]
