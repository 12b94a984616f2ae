"""Samples drawn directly from a generative model (``gaussian``): no dynamics, no starts."""
from __future__ import annotations

from collapse_sim.rng import stream
from collapse_sim.samplers import SampleResult


class ModelSamplesSampler:
    def __init__(self, settings):
        self.settings = settings

    def sample(self, model_ref, starts, n, seed, executor) -> SampleResult:
        from collapse_sim.models import load_model

        model = load_model(model_ref.settings, model_ref.path)
        if not hasattr(model, "sample"):
            raise TypeError(f"model kind {model_ref.settings.kind!r} cannot draw samples (sampler model-samples)")
        return SampleResult(model.sample(n, stream(seed, "model-samples")))
