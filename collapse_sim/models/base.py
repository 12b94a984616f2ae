"""What every model kind shares: the Model protocol (what the loop needs from any potential),
the capabilities a kind declares beyond it, the settings base and the registry."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar, Protocol, runtime_checkable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError
from pydantic import Field, model_validator

from collapse_sim.registry import Registry
from collapse_sim.settings_base import KindSettings

# ------------------------------------------------------------------------------------ capabilities
# What a kind can do beyond the protocol, declared on its implementation class (like
# scikit-learn's estimator tags); consumers ask ``X in capabilities(model)``, never the class or kind.
TRAINABLE = "trainable"            # fit() trains it (from scratch, or from pretrained weights)
PRETRAINED = "pretrained"          # starts from published weights (fit fine-tunes)
FROZEN = "frozen"                  # never trained: fit() keeps it as it is (a teacher, a zoo member)
BATCHED_FORCES = "batched_forces"  # batched_potential() -> BatchedPotential: many replicas per call
FEATURES = "features"              # embed(structures) -> (n, p): per-structure features for alignment metrics

#: positions (M, 3) of R replicas' atoms, concatenated -> (energies (R,), forces (M, 3))
BatchedForces = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class BatchedPotential(Protocol):
    """Energies and forces of many replicas per call: what the batched MD engine drives."""

    def bind(self, structures: Sequence[Atoms]) -> BatchedForces:
        """Forces for these replicas (their numbers, cells and pbc; positions come with each call)."""


def periodic(atoms: Atoms) -> bool:
    """Stress is defined (and predicted) for fully periodic cells only."""
    return bool(np.all(atoms.pbc)) and atoms.cell.rank == 3


def calculate_by_predict(calc: Calculator, predict: Callable, atoms, properties, system_changes) -> None:
    """``Calculator.calculate`` for a model whose ``predict`` labels lists of structures: the one
    structure through it, so the calculator and the batched path give the same numbers; stress only
    for fully periodic cells."""
    Calculator.calculate(calc, atoms, properties, system_changes)
    if "stress" in properties and not periodic(calc.atoms):
        raise PropertyNotImplementedError("stress needs a fully periodic cell")
    [labelled] = predict([calc.atoms])
    calc.results = dict(labelled.calc.results)
    calc.results["free_energy"] = calc.results["energy"]


def capabilities(model) -> frozenset[str]:
    """What a model (instance or class) declares: its ``capabilities`` attribute (none if absent); a
    wrapper such as ``frozen`` may set it per instance, from what it wraps."""
    return frozenset(getattr(model, "capabilities", frozenset()))


#: the ``continual`` setting of the kinds that can start from saved weights (``starting_from``)
CONTINUAL = Field(False, description="each model-fed generation starts from its predecessor's weights (continual "
                  "fine-tuning) instead of the kind's own start (random, published or `init` weights)")
#: ... and how long each such fine-tuning is: generation 0 makes the lineage's model, a continual
#: step from a trained model needs fewer steps (the price of a long study in trainings)
CONTINUAL_STEPS = Field(None, gt=0, description="with `continual`, the optimiser steps of each model-fed "
                        "generation's fine-tuning, rounded up to whole passes as `steps` is (the same budget for "
                        "every policy); generation 0 keeps its own. Default: as generation 0 (`steps`, else "
                        "`epochs`)")


class ModelSettingsBase(KindSettings):
    #: False for a model of abstract samples (one-atom carriers of a number, the gaussian system)
    atomistic: ClassVar[bool] = True
    #: True if the model draws its own samples, ``sample(n, rng)`` (for the model-samples sampler)
    generative: ClassVar[bool] = False

    @model_validator(mode="after")
    def _continual_steps_need_continual(self):
        if getattr(self, "continual_steps", None) is not None and not getattr(self, "continual", False):
            raise ValueError("continual_steps: set only with continual: true (it is the fine-tunings' length)")
        return self

    def continued_from(self, path: str) -> ModelSettingsBase:
        """The settings a model-fed generation trains with under ``continual``: from the weights saved
        at ``path``, for ``continual_steps`` if set."""
        settings = self.starting_from(path)
        steps = getattr(self, "continual_steps", None)
        return settings if steps is None else settings.model_copy(update={"steps": steps})

    def starting_from(self, path: str) -> ModelSettingsBase:
        """These settings, training from the weights saved at ``path`` by this kind: what
        ``continual`` needs. A kind that can start from saved weights overrides it and declares
        ``continual: bool = CONTINUAL``."""
        raise NotImplementedError(f"model kind {self.kind!r} cannot start from saved weights")

    def pretrained_species(self) -> frozenset[str] | None:
        """Elements the model predicts before any training (published weights): what a held-out
        probe of other chemistry may hold. Empty: only what it is trained on; None: not known
        before it runs (a calculator)."""
        return frozenset()


@runtime_checkable
class Model(Protocol):
    """A potential. ``settings`` is the model's pydantic settings object.

    fit(train, seed, log_path, species)    train on labelled structures; deterministic for a seed;
                                             species: elements to represent even if train lacks them
    predict(structures) -> list[Atoms]      labelled copies (energy, forces, stress if periodic), batched
    calculator() -> ase Calculator          for ASE-driven sampling (MD, relaxation)
    save(path) / load(path, settings)       ``save`` writes one file; ``load`` is a classmethod
    fingerprint() -> str                     'sha256:' + hex digest of the parameters; identical
                                             for identical weights whatever process saved them
                                             (the file bytes are not: TorchScript names vary)

    Capabilities: the class attribute ``capabilities`` (a frozenset of the names above) says what
    else the kind offers; ask ``capabilities(model)``:
      FEATURES        embed(structures) -> (n, p): one invariant vector per structure (alignment metrics)
      BATCHED_FORCES  batched_potential() -> BatchedPotential (the batched MD engine; without it the
                      engine steps the ASE calculator replica after replica)
      TRAINABLE / PRETRAINED / FROZEN: how fit treats the weights
    Optional: summary() -> dict               fields the model adds to its generation's metrics row
                                             (linear: linear_weight_norm; gaussian: gauss_mean, gauss_var)
              sample(n, rng) -> list[Atoms]   a generative model's own samples (sampler model-samples)
    Built-in kinds: mace (MACEModel), ani (ANIModel), chgnet (CHGNetModel), frozen (FrozenModel),
    linear (LinearModel), gaussian (GaussianModel); see ``collapse_sim.models``.
    A kind's class is built as ``Model(settings, threads=...)``.
    """

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> Model: ...

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]: ...

    def calculator(self) -> Calculator: ...

    def save(self, path: Path) -> None: ...

    def fingerprint(self) -> str: ...


KINDS = Registry("model", ModelSettingsBase)
