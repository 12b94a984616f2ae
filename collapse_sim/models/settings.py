"""Model settings, one class per ``kind:``; kept free of torch so validation is fast."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import (Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, field_validator,
                      model_validator)

from collapse_sim.settings_base import Strict, kind_union

_IRREP = re.compile(r"^(\d+)x(\d+)([eo])$")


def parse_irreps(value: str, name: str) -> list[tuple[int, int, str]]:
    """'16x0e+16x1o' -> [(16, 0, 'e'), (16, 1, 'o')], without importing e3nn."""
    terms = [t.strip() for t in value.split("+")]
    parsed = [_IRREP.match(t) for t in terms]
    if not terms or not all(parsed):
        raise ValueError(f"{name}={value!r} is not an irreps string like '16x0e+16x1o'")
    return [(int(m.group(1)), int(m.group(2)), m.group(3)) for m in parsed]


class MACESettings(Strict):
    """MACE hyperparameters, named as mace's CLI names them (``mace_run_train --help``).

    Differences from the CLI's names: ``num_bessel`` is ``--num_radial_basis``,
    ``num_polynomial_cutoff`` is ``--num_cutoff_basis``, ``epochs`` is ``--max_num_epochs``,
    ``dtype`` is ``--default_dtype``, ``ema_decay=None`` is ``--ema False``.
    """

    kind: Literal["mace"] = "mace"
    # architecture
    model: Literal["MACE", "ScaleShiftMACE"] = Field(
        "MACE", description="as --model: 'MACE' = ScaleShiftMACE with shift 0, 'ScaleShiftMACE' shifts by the mean")
    hidden_irreps: str = "16x0e+16x1o"
    max_ell: PositiveInt = 1
    r_max: PositiveFloat = 4.5
    num_interactions: PositiveInt = 2
    correlation: PositiveInt = 2
    num_bessel: PositiveInt = 8
    num_polynomial_cutoff: PositiveInt = 5
    MLP_irreps: str = "16x0e"
    radial_MLP: list[PositiveInt] = Field(default_factory=lambda: [32, 32, 32], min_length=1)
    gate: Literal["silu", "tanh", "abs", "None"] = "silu"
    use_reduced_cg: bool = False
    scaling: Literal["rms_forces_scaling", "std_scaling", "no_scaling"] = "rms_forces_scaling"
    E0s: Literal["average"] | dict[str, float] = "average"
    dtype: Literal["float32", "float64"] = "float32"
    # training
    epochs: NonNegativeInt = 20
    lr: PositiveFloat = 0.01
    batch_size: PositiveInt = 10
    energy_weight: NonNegativeFloat = 1.0
    forces_weight: NonNegativeFloat = 100.0
    stress_weight: NonNegativeFloat = 0.0
    weight_decay: NonNegativeFloat = 5e-7
    amsgrad: bool = True
    clip_grad: PositiveFloat | None = 10.0
    lr_factor: float = Field(0.8, gt=0.0, lt=1.0, description="ReduceLROnPlateau factor")
    scheduler_patience: NonNegativeInt = 50
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="0 = no validation split")
    ema_decay: float | None = Field(0.99, gt=0.0, lt=1.0)
    device: Literal["cpu", "cuda"] = "cpu"

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
    def _check_weights(self) -> "MACESettings":
        if self.energy_weight == 0 and self.forces_weight == 0 and self.stress_weight == 0:
            raise ValueError("energy_weight, forces_weight and stress_weight cannot all be 0")
        return self


class LinearSettings(Strict):
    """A linear potential: least squares of energies on fixed per-structure descriptors.

    Descriptor (``collapse_sim.models.linear.PairBasis``): column 0 counts the atoms (the E0
    term); column b = 1..n_basis is sum over pairs i<j closer than ``r_cut`` of
    exp(-(r_ij - c_b)^2 / (2 width^2)) * fc(r_ij), centres c_b evenly spaced from ``r_min``
    (step (r_cut - r_min)/n_basis), fc(r) = (1 + cos(pi r / r_cut))/2. Forces and stress are its
    analytic gradients. Only energies are fitted (the closed-form collapse laws are about them)."""

    kind: Literal["linear"]
    n_basis: PositiveInt = 4
    r_cut: PositiveFloat = Field(5.0, description="Å")
    r_min: NonNegativeFloat = Field(2.0, description="Å; centre of the first radial Gaussian")
    width: PositiveFloat | None = Field(None, description="Å; default: the centre spacing")
    alpha: NonNegativeFloat = Field(0.0, description="ridge penalty alpha*|w|^2 (0 = ordinary least squares)")

    @model_validator(mode="after")
    def _check_range(self) -> "LinearSettings":
        if self.r_min >= self.r_cut:
            raise ValueError(f"r_min={self.r_min} must be below r_cut={self.r_cut}")
        return self

    @property
    def basis(self) -> dict:
        """The descriptor's settings (what an oracle must share for the linear laws to be exact)."""
        return {"n_basis": self.n_basis, "r_cut": self.r_cut, "r_min": self.r_min, "width": self.width}


class GaussianSettings(Strict):
    """An abstract generative model: a 1-D Gaussian fitted to samples (``collapse_sim.models.gaussian``).

    A sample is a one-atom structure whose x coordinate holds the value (see the ``gaussian``
    system). ``estimator``: ``mle`` divides the sum of squares by M, ``unbiased`` by M - 1."""

    kind: Literal["gaussian"]
    estimator: Literal["mle", "unbiased"] = "mle"


#: every model kind; a ``model:`` mapping without ``kind`` is a MACE model
ModelSettings = kind_union("mace", MACESettings, LinearSettings, GaussianSettings)


def parse_model_settings(data) -> MACESettings | LinearSettings | GaussianSettings:
    """Validate a ``model:`` mapping on its own (``ModelSettings`` is a tagged union, not a class)."""
    from pydantic import TypeAdapter

    return TypeAdapter(ModelSettings).validate_python(data)
