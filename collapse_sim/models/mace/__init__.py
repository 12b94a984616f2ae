"""MACE (mace-torch) as a model kind: its settings and registration, free of torch so that a
scenario validates without importing it. The implementation is imported on first use:

* ``preamble`` imported first by the others: mace before e3nn, torch state scoped to a call;
* ``graphs``   structures -> mace graphs, collated once and batched by index;
* ``training`` the network built from the training data and fitted as ``mace_run_train`` fits it;
* ``model``    ``MACEModel``: fit, predict, embed, calculator, save/load, fingerprint;
* ``batched``  energies and forces of many MD replicas per call (the batched_forces capability).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from collapse_sim.models.base import CONTINUAL, CONTINUAL_STEPS, KINDS, ModelSettingsBase

_IRREP = re.compile(r"^(\d+)x(\d+)([eo])$")


def parse_irreps(value: str, name: str) -> list[tuple[int, int, str]]:
    """'16x0e+16x1o' -> [(16, 0, 'e'), (16, 1, 'o')], without importing e3nn."""
    terms = [t.strip() for t in value.split("+")]
    parsed = [_IRREP.match(t) for t in terms]
    if not terms or not all(parsed):
        raise ValueError(f"{name}={value!r} is not an irreps string like '16x0e+16x1o'")
    return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in parsed]


class MACESettings(ModelSettingsBase):
    """MACE hyperparameters, named as mace's CLI names them (``mace_run_train --help``).

    Differences from the CLI's names: ``num_bessel`` is ``--num_radial_basis``,
    ``num_polynomial_cutoff`` is ``--num_cutoff_basis``, ``epochs`` is ``--max_num_epochs``,
    ``dtype`` is ``--default_dtype``, ``ema_decay=None`` is ``--ema False``.
    """

    kind: Literal["mace"] = "mace"
    # architecture
    model: Literal["MACE", "ScaleShiftMACE"] = Field(
        "MACE", description="as --model: 'MACE' = ScaleShiftMACE with shift 0, 'ScaleShiftMACE' shifts by the mean")
    hidden_irreps: str = Field("16x0e+16x1o", description="node features per layer, e3nn irreps, one multiplicity; "
                                                        "each irrep Lp needs L <= max_ell and p = (-1)^L (0e 1o 2e "
                                                        "...); scalars only ('16x0e') is the invariant MACE")
    max_ell: int = Field(1, description="highest spherical harmonic of the edge features, >= 1 (mace-torch 0.3.16 "
                                        "cannot build max_ell 0)")
    r_max: PositiveFloat = Field(4.5, description="Å; cutoff radius")
    num_interactions: PositiveInt = Field(2, description="message-passing layers")
    correlation: PositiveInt = Field(2, description="body order of the product basis minus 1")
    num_bessel: PositiveInt = Field(8, description="radial Bessel functions (--num_radial_basis)")
    num_polynomial_cutoff: PositiveInt = Field(5, description="order of the polynomial cutoff (--num_cutoff_basis)")
    MLP_irreps: str = Field("16x0e", description="hidden irreps of the last readout's MLP, scalars only")
    radial_MLP: list[PositiveInt] = Field(default_factory=lambda: [32, 32, 32], min_length=1,
                                          description="hidden widths of the radial network")
    gate: Literal["silu", "tanh", "abs", "None"] = Field("silu", description="non-linearity of the readout MLP")
    use_reduced_cg: bool = Field(False, description="reduced Clebsch-Gordan coefficients in the product basis")
    scaling: Literal["rms_forces_scaling", "std_scaling", "no_scaling"] = Field(
        "rms_forces_scaling", description="how the interaction energy's scale is taken from the training data")
    E0s: Literal["average", "init"] | dict[str, float] = Field(
        "average", description="per-element reference energies (eV): 'average' = least squares on the training "
                               "split (fine-tuning from `model.init`: an element the split lacks keeps the file's "
                               "E0); 'init' = the `model.init` file's, unchanged (what `continual` fine-tunings "
                               "use); or a mapping symbol -> eV")
    dtype: Literal["float32", "float64"] = Field("float32", description="parameters and computation (--default_dtype)")
    # training
    epochs: NonNegativeInt = Field(20, description="passes over the training split (--max_num_epochs)")
    steps: PositiveInt | None = Field(None, description="optimiser steps per training, rounded up to whole passes; "
                                                        "overrides epochs, so every training set gets the same "
                                                        "compute whatever its size")
    lr: PositiveFloat = Field(0.01, description="Adam learning rate")
    batch_size: PositiveInt = Field(10, description="structures per optimiser step")
    energy_weight: NonNegativeFloat = Field(1.0, description="weight of the energy term of the loss")
    forces_weight: NonNegativeFloat = Field(100.0, description="weight of the forces term of the loss")
    stress_weight: NonNegativeFloat = Field(0.0, description="weight of the stress term (> 0: stress is fitted)")
    weight_decay: NonNegativeFloat = Field(5e-7, description="L2 decay of the interaction and product weights")
    amsgrad: bool = Field(True, description="Adam's AMSGrad variant")
    clip_grad: PositiveFloat | None = Field(10.0, description="gradient norm clip (None: no clipping)")
    lr_factor: float = Field(0.8, gt=0.0, lt=1.0, description="ReduceLROnPlateau factor")
    scheduler_patience: NonNegativeInt = Field(50, description="ReduceLROnPlateau patience, epochs")
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="0 = no validation split")
    ema_decay: float | None = Field(0.99, gt=0.0, lt=1.0, description="exponential moving average of the weights "
                                                                       "(None: no EMA)")
    device: Literal["cpu", "cuda"] = Field("cpu", description="where training and inference run")
    continual: bool = CONTINUAL
    continual_steps: int | None = CONTINUAL_STEPS
    init: str | None = Field(None, description="a MACE model file (saved by this kind, or by mace_run_train) "
                                               "whose weights every fit starts from: fine-tuning, e.g. after "
                                               "pre-training on synthetic data. The file's architecture is kept "
                                               "(the architecture settings above are then ignored); with E0s "
                                               "'average' the E0s are fitted anew on the training set (an element it "
                                               "lacks keeps the file's), so pre-training labels and fine-tuning "
                                               "labels need not share an energy zero")

    def starting_from(self, path: str) -> MACESettings:
        """Training from the MACE model saved at ``path`` (``init``)."""
        return self.model_copy(update={"init": str(path)})

    def continued_from(self, path: str) -> MACESettings:
        """As the base, keeping the predecessor's E0s: a lineage's labels, its own included, share
        the oracle's energy zero, and refitting them on a pool that lacks a molecule (an element,
        or the compositions that separate two) would move them by whole eV."""
        return super().continued_from(path).model_copy(update={"E0s": "init"})

    @field_validator("init")
    @classmethod
    def _check_init(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).expanduser().is_file():
            raise ValueError(f"init: {v!r} is not a file")
        return v

    @field_validator("hidden_irreps")
    @classmethod
    def _check_hidden(cls, v: str) -> str:
        irreps = parse_irreps(v, "hidden_irreps")
        if not any(l == 0 and p == "e" for _, l, p in irreps):
            raise ValueError(f"hidden_irreps={v!r} needs scalar (0e) channels")
        if len({mul for mul, _, _ in irreps}) != 1:
            # same restriction as mace's configure_model (and MACECalculator.get_descriptors)
            raise ValueError(f"hidden_irreps={v!r}: all irreps must have the same multiplicity")
        return v

    @field_validator("max_ell")
    @classmethod
    def _check_max_ell(cls, v: int) -> int:
        if v < 1:
            # mace-torch 0.3.16's SymmetricContraction fails (IndexError) for max_ell 0, whatever the correlation
            raise ValueError(f"max_ell={v}: mace-torch needs max_ell >= 1; for an invariant MACE keep max_ell >= 1 "
                             "and use scalar-only hidden_irreps, e.g. '16x0e'")
        return v

    @field_validator("MLP_irreps")
    @classmethod
    def _check_mlp(cls, v: str) -> str:
        if any((l, p) != (0, "e") for _, l, p in parse_irreps(v, "MLP_irreps")):
            raise ValueError(f"MLP_irreps={v!r} must be scalar (0e) only")
        return v

    @field_validator("E0s")
    @classmethod
    def _check_e0s(cls, v):
        if isinstance(v, dict):
            from ase.data import atomic_numbers

            bad = [k for k in v if k not in atomic_numbers or k == "X"]
            if bad:
                raise ValueError(f"E0s keys must be element symbols, got {bad}")
        return v

    @model_validator(mode="after")
    def _check_irreps_reachable(self) -> MACESettings:
        # an irrep the edge harmonics (L <= max_ell, parity (-1)^L) cannot reach gets no gradient:
        # mace builds the model, then training fails deep in autograd
        bad = [f"{mul}x{l}{p}" for mul, l, p in parse_irreps(self.hidden_irreps, "hidden_irreps")
               if l > self.max_ell or p != ("e" if l % 2 == 0 else "o")]
        if bad:
            raise ValueError(f"hidden_irreps={self.hidden_irreps!r}: {', '.join(bad)} cannot be reached with "
                             f"max_ell={self.max_ell} (each irrep Lp needs L <= max_ell and parity p = (-1)^L: "
                             "0e, 1o, 2e, 3o, ...)")
        return self

    @model_validator(mode="after")
    def _check_e0s_init(self) -> MACESettings:
        if self.E0s == "init" and self.init is None:
            raise ValueError("E0s: 'init' keeps the E0s of the model file in `init`, which is not set")
        return self

    @model_validator(mode="after")
    def _check_weights(self) -> MACESettings:
        if self.energy_weight == 0 and self.forces_weight == 0 and self.stress_weight == 0:
            raise ValueError("energy_weight, forces_weight and stress_weight cannot all be 0")
        return self


KINDS.register(MACESettings, "collapse_sim.models.mace.model:MACEModel")
