"""ANI (torchani 2.9 building blocks, trained from scratch) as a model kind: its settings and
registration, free of torch so that a scenario validates without importing it. The
implementation is imported on first use:

* ``network``  the torch module: torchani's ``AEVComputer`` (radial + angular atomic
  environment vectors) and ``ANINetworks`` (one MLP per element) plus per-element E0s;
  structures packed with their neighbour lists (periodic images included) and batched by index;
* ``model``    ``ANIModel``: fit, predict, embed, calculator, save/load, fingerprint;
* ``batched``  energies and forces of many MD replicas per call (the batched_forces capability).

No pretrained torchani model is used (they download weights): every network starts from
``torch.manual_seed(seed)``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, model_validator

from collapse_sim.models.base import KINDS, ModelSettingsBase


class ANISettings(ModelSettingsBase):
    """An ANI potential: AEVs as ANI-1x computes them (cosine cutoff, linearly spaced shells)
    fed to one MLP per element, E = sum over atoms of (MLP_element(AEV_atom) + E0_element).

    Defaults are ANI-1x's cutoffs and widths with fewer shells and smaller networks, sized
    for fast tests and small data. Energies and forces (by autograd) are fitted; stress is
    predicted for periodic cells (strain derivative) but not fitted."""

    kind: Literal["ani"]
    # AEV (torchani.aev.AEVComputer with ANIRadial / ANIAngular .cover_linearly)
    radial_cutoff: PositiveFloat = Field(5.2, description="Å; cutoff of the radial AEV terms (ANI-1x: 5.2)")
    angular_cutoff: PositiveFloat = Field(3.5, description="Å; cutoff of the angular AEV terms, below radial_cutoff "
                                                           "(ANI-1x: 3.5)")
    radial_start: NonNegativeFloat = Field(0.9, description="Å; first radial shell centre (ANI-1x: 0.9)")
    angular_start: NonNegativeFloat = Field(0.9, description="Å; first radial shell centre of the angular terms")
    radial_shells: PositiveInt = Field(8, description="radial shells, evenly spaced from radial_start to the cutoff "
                                                      "(ANI-1x: 16)")
    angular_shells: PositiveInt = Field(4, description="radial shells of the angular terms (ANI-1x: 4)")
    angular_sections: PositiveInt = Field(4, description="angle sections of the angular terms (ANI-1x: 8)")
    radial_eta: PositiveFloat = Field(16.0, description="1/Å²; width parameter of the radial Gaussians (ANI-1x: 16)")
    angular_eta: PositiveFloat = Field(8.0, description="1/Å²; width parameter of the angular terms' radial Gaussians "
                                                        "(ANI-1x: 8)")
    angular_zeta: PositiveFloat = Field(32.0, description="angular sharpness zeta (ANI-1x: 32)")
    # networks (torchani.nn.ANINetworks of AtomicNetwork)
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64, 32], min_length=1,
                                      description="hidden layer widths of every element's MLP; the last one is the "
                                                  "embedding's width")
    activation: Literal["celu", "gelu", "silu", "tanh"] = Field(
        "celu", description="hidden-layer non-linearity ('celu': CELU with alpha 0.1, as ANI)")
    bias: bool = Field(True, description="biases in the linear layers (ANI-1x: yes)")
    dtype: Literal["float32", "float64"] = Field("float32", description="parameters and computation")
    device: Literal["cpu", "cuda"] = Field("cpu", description="where training and inference run")
    # training
    epochs: NonNegativeInt = Field(50, description="passes over the training split")
    steps: PositiveInt | None = Field(None, description="optimiser steps per training, rounded up to whole passes; "
                                                        "overrides epochs, so every training set gets the same "
                                                        "compute whatever its size")
    lr: PositiveFloat = Field(1e-3, description="Adam learning rate")
    batch_size: PositiveInt = Field(8, description="structures per optimiser step (the last batch may be smaller)")
    energy_weight: NonNegativeFloat = Field(1.0, description="weight of the loss's energy term (squared error per "
                                                             "atom, eV²)")
    forces_weight: NonNegativeFloat = Field(100.0, description="weight of the loss's forces term (mean squared "
                                                               "component error, (eV/Å)²)")
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="held-out share of the data for choosing the "
                                                                    "best epoch (0 = no validation, last epoch kept)")

    @model_validator(mode="after")
    def _check(self) -> ANISettings:
        if self.angular_cutoff >= self.radial_cutoff:
            # torchani's AEVComputer asserts angular < radial (the neighbour list is the radial one)
            raise ValueError(f"angular_cutoff={self.angular_cutoff} must be below radial_cutoff={self.radial_cutoff}")
        if self.radial_start >= self.radial_cutoff or self.angular_start >= self.angular_cutoff:
            raise ValueError("radial_start and angular_start must be below their cutoffs")
        if self.energy_weight == 0 and self.forces_weight == 0:
            raise ValueError("energy_weight and forces_weight cannot both be 0")
        return self


KINDS.register(ANISettings, "collapse_sim.models.ani.model:ANIModel")
