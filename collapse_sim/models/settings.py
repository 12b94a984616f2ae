"""Model settings, one class per ``kind:``; kept free of torch so validation is fast."""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from collapse_sim.settings_base import Strict

_IRREPS = re.compile(r"^\s*\d+x\d+[eo](\s*\+\s*\d+x\d+[eo])*\s*$")


class MACESettings(Strict):
    """MACE hyperparameters in mace-torch's own vocabulary, plus training settings."""

    kind: Literal["mace"] = "mace"
    hidden_irreps: str = "16x0e+16x1o"
    max_ell: int = Field(1, ge=0, le=4)
    r_max: float = Field(4.5, gt=0)
    num_interactions: int = Field(2, ge=1)
    correlation: int = Field(2, ge=1)
    num_bessel: int = Field(8, ge=1)
    num_polynomial_cutoff: int = Field(5, ge=1)
    MLP_irreps: str = "16x0e"
    radial_MLP: list[int] = Field(default_factory=lambda: [32, 32, 32])
    gate: Literal["silu", "tanh", "abs", "None"] = "silu"
    dtype: Literal["float32", "float64"] = "float32"
    epochs: int = Field(20, ge=0)
    lr: float = Field(0.01, gt=0)
    batch_size: int = Field(10, ge=1)
    energy_weight: float = Field(1.0, ge=0)
    forces_weight: float = Field(100.0, ge=0)
    stress_weight: float = Field(0.0, ge=0)
    weight_decay: float = Field(5e-7, ge=0)
    valid_fraction: float = Field(0.1, gt=0, lt=1)
    ema_decay: float | None = Field(0.99, gt=0, lt=1)
    device: Literal["cpu", "cuda"] = "cpu"
    E0s: Literal["average"] | dict[str, float] = "average"
    scaling: Literal["rms_forces_scaling", "std_scaling", "no_scaling"] = "rms_forces_scaling"

    @field_validator("hidden_irreps", "MLP_irreps")
    @classmethod
    def _irreps(cls, value: str) -> str:
        if not _IRREPS.match(value):
            raise ValueError(f"{value!r} is not an irreps string like '16x0e+16x1o'")
        return value


ModelSettings = MACESettings
