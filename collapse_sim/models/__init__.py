"""Models: trainable potentials behind one protocol (``collapse_sim.models.base.Model``).
The registry maps a settings ``kind`` to the class; heavy imports happen only here."""
from __future__ import annotations

from pathlib import Path


def _model_class(kind: str):
    if kind == "mace":
        from collapse_sim.models.mace.model import MACEModel

        return MACEModel
    if kind == "linear":
        from collapse_sim.models.linear import LinearModel

        return LinearModel
    if kind == "gaussian":
        from collapse_sim.models.gaussian import GaussianModel

        return GaussianModel
    raise KeyError(f"unknown model kind {kind!r}")


def new_model(settings, threads: int | None = None):
    return _model_class(settings.kind)(settings, threads=threads)


def load_model(settings, path: str | Path, threads: int | None = None):
    return _model_class(settings.kind).load(Path(path), settings, threads=threads)
