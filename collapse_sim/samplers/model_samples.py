"""Samples drawn directly from a generative model (``gaussian``): no dynamics, no starts."""
from __future__ import annotations

from typing import Literal

from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.base import KINDS, Sampler, SampleResult
from collapse_sim.settings_base import KindSettings


class ModelSamplesSettings(KindSettings):
    """New samples drawn from a generative model (``gaussian``): ``model.sample(n, rng)``."""

    kind: Literal["model-samples"]

    def check(self, scenario) -> None:
        if not scenario.model.generative:
            raise ValueError(f"synthetic.sampler: model-samples needs a generative model (gaussian), "
                             f"not {scenario.model.kind!r}")


class ModelSamplesSampler(Sampler):
    def sample(self, model_ref, starts, n, seed, executor) -> SampleResult:
        from collapse_sim import models

        model = models.load(model_ref.settings, model_ref.path)
        if not hasattr(model, "sample"):
            raise TypeError(f"model kind {model_ref.settings.kind!r} cannot draw samples (sampler model-samples)")
        return SampleResult(model.sample(n, stream(seed, "model-samples")))


KINDS.register(ModelSamplesSettings, ModelSamplesSampler)
