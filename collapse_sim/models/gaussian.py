"""A 1-D Gaussian as a generative 'model' behind the Model protocol (Shumailov et al. 2024).

Samples are one-atom structures carrying a value in ``positions[0, 0]``
(:mod:`collapse_sim.systems.gaussian`). ``fit`` estimates the mean and the variance of the
training samples (``estimator``: ``mle`` divides by M, ``unbiased`` by M - 1); ``sample``
draws new samples from the fit (the ``model-samples`` sampler calls it). The model is not a
potential: ``predict`` labels every sample with energy 0 and zero forces, like the
``Constant`` oracle, and its calculator is that constant. ``summary`` adds ``gauss_mean``
and ``gauss_var`` to the generation's metrics row.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field

from collapse_sim.data.structures import attach_labels
from collapse_sim.models.base import KINDS, TRAINABLE, ModelSettingsBase
from collapse_sim.systems.gaussian import sample_atoms, sample_values

FORMAT = "collapse_sim.gaussian/1"


class GaussianSettings(ModelSettingsBase):
    """An abstract generative model: a 1-D Gaussian fitted to samples (a one-atom structure whose
    x coordinate holds the value; see the ``gaussian`` system)."""

    atomistic: ClassVar[bool] = False
    generative: ClassVar[bool] = True
    kind: Literal["gaussian"]
    estimator: Literal["mle", "unbiased"] = Field(
        "mle", description="variance estimator: mle divides the sum of squares by M, unbiased by M - 1")


class GaussianModel:
    """N(mean, var) fitted to one-atom sample carriers; not atomistic, so no features for the
    (atomistic) alignment metrics: ``embed`` is the standardised sample, for its own tests."""

    capabilities = frozenset({TRAINABLE})

    def __init__(self, settings: GaussianSettings, threads: int | None = None):
        self.settings = settings
        self.threads = threads
        self.mean: float | None = None
        self.var: float | None = None
        self.fit_info: dict = {}

    def _require(self) -> tuple[float, float]:
        if self.mean is None:
            raise RuntimeError("GaussianModel is not fitted yet: call fit() or load() first")
        return self.mean, self.var

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> GaussianModel:
        x = sample_values(list(train))
        ddof = 1 if self.settings.estimator == "unbiased" else 0
        if len(x) < 1 + ddof:
            raise ValueError(f"fit() with estimator={self.settings.estimator} needs at least {1 + ddof} samples")
        self.mean, self.var = float(x.mean()), float(x.var(ddof=ddof))
        self.fit_info = {"seed": int(seed), "n_train": int(len(x)), "estimator": self.settings.estimator}
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            Path(log_path).write_text(json.dumps(self.fit_info | self.summary()) + "\n")
        return self

    def sample(self, n: int, rng: np.random.Generator) -> list[Atoms]:
        """``n`` new samples x ~ N(mean, var) as one-atom structures."""
        mean, var = self._require()
        return [sample_atoms(v) for v in mean + np.sqrt(var) * rng.standard_normal(n)]

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        self._require()
        return [attach_labels(a, 0.0, np.zeros((len(a), 3))) for a in structures]

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, 1): the standardised samples (x - mean) / std under this model."""
        mean, var = self._require()
        return ((sample_values(list(structures)) - mean) / np.sqrt(max(var, 1e-300)))[:, None]

    def calculator(self) -> Calculator:
        from collapse_sim.oracles.constant import Constant

        return Constant(0.0)

    def summary(self) -> dict:
        mean, var = self._require()
        return {"gauss_mean": mean, "gauss_var": var}

    def fingerprint(self) -> str:
        mean, var = self._require()
        digest = hashlib.sha256(f"{FORMAT}|{self.settings.estimator}|".encode())
        digest.update(np.array([mean, var], dtype="<f8").tobytes())
        return "sha256:" + digest.hexdigest()[:16]

    def save(self, path: Path) -> None:
        from collapse_sim.runtime.atomic import atomic_write_text

        mean, var = self._require()
        data = {"format": FORMAT, "estimator": self.settings.estimator, "mean": mean, "var": var,
                "fit_info": self.fit_info}
        atomic_write_text(Path(path), json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path, settings: GaussianSettings, threads: int | None = None) -> GaussianModel:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a collapse_sim Gaussian model file")
        obj = cls(settings, threads=threads)
        obj.mean, obj.var, obj.fit_info = float(data["mean"]), float(data["var"]), data.get("fit_info", {})
        return obj


KINDS.register(GaussianSettings, GaussianModel)
