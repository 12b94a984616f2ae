"""What every model kind shares: the Model protocol (what the loop needs from any potential),
the settings base and the registry."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings

TRAINABLE = "trainable"            # fit() trains it (from scratch, or from pretrained weights)
PRETRAINED = "pretrained"          # starts from published weights (fit fine-tunes)
FROZEN = "frozen"                  # never trained: fit() keeps it as it is (a teacher, a zoo member)
BATCHED_FORCES = "batched_forces"  # batched_potential() -> BatchedPotential: many replicas per call
FEATURES = "features"              # embed(structures) -> (n, p): per-structure features for alignment metrics
ENSEMBLE = "ensemble"              # force_deviation(structures) -> per-structure max force std (trust windows)

#: positions (M, 3) of R replicas' atoms, concatenated -> (energies (R,), forces (M, 3))
BatchedForces = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class BatchedPotential(Protocol):
    def bind(self, structures: Sequence[Atoms]) -> BatchedForces: ...


def capabilities(model) -> frozenset[str]:
    """What a model (instance or class) declares: its ``capabilities`` class attribute."""
    return frozenset(getattr(model, "capabilities", frozenset()))


class ModelSettingsBase(KindSettings):
    #: False for a model of abstract samples (one-atom carriers of a number, the gaussian system)
    atomistic: ClassVar[bool] = True
    #: True if the model draws its own samples, ``sample(n, rng)`` (for the model-samples sampler)
    generative: ClassVar[bool] = False


@runtime_checkable
class Model(Protocol):
    """A trainable potential. ``settings`` is the model's pydantic settings object.

    fit(train, seed, log_path, species)    train on labelled structures; deterministic for a seed;
                                             species: elements to represent even if train lacks them
    predict(structures) -> list[Atoms]      labelled copies (energy, forces, stress if periodic), batched
    embed(structures) -> (n, p) array       one invariant vector per structure, batched
    calculator() -> ase Calculator          for ASE-driven sampling (MD, relaxation)
    save(path) / load(path, settings)       ``save`` writes one file; ``load`` is a classmethod
    fingerprint() -> str                     'sha256:' + hex digest of the parameters; identical
                                             for identical weights whatever process saved them
                                             (the file bytes are not: TorchScript names vary)

    Optional: summary() -> dict               fields the model adds to its generation's metrics row
                                             (linear: linear_weight_norm; gaussian: gauss_mean, gauss_var)
              sample(n, rng) -> list[Atoms]   a generative model's own samples (sampler model-samples)
    Kinds: mace (MACEModel), ani (ANIModel), linear (LinearModel), gaussian (GaussianModel); see
    ``collapse_sim.models``.
    A kind's class is built as ``Model(settings, threads=...)``.
    """

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> Model: ...

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]: ...

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray: ...

    def calculator(self) -> Calculator: ...

    def save(self, path: Path) -> None: ...

    def fingerprint(self) -> str: ...


KINDS = Registry("model", ModelSettingsBase)
