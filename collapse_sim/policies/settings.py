"""Policy settings, one class per ``kind:``; the scenario parses them as a tagged union."""
from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field

from collapse_sim.settings_base import Strict


class _PolicyBase(Strict):
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$", description="lineage name; default: kind")

    @property
    def label(self) -> str:
        return self.name or self.kind  # type: ignore[attr-defined]


class ReplaceSettings(_PolicyBase):
    """Train only on the newest synthetic data."""

    kind: Literal["replace"]


class AccumulateSettings(_PolicyBase):
    """Train on all data so far (real generation-0 data plus every synthetic pool)."""

    kind: Literal["accumulate"]


class AccumulateSubsampleSettings(_PolicyBase):
    """All data so far, subsampled uniformly to a fixed budget."""

    kind: Literal["accumulate-subsample"]
    budget: int | None = Field(None, ge=1, description="training-set size; default: size of the real data")


class FreshRealSettings(_PolicyBase):
    """A fraction of each generation's set is new oracle data, the rest synthetic."""

    kind: Literal["fresh-real"]
    real_fraction: float = Field(ge=0.0, le=1.0)


PolicySettings = Annotated[
    Union[ReplaceSettings, AccumulateSettings, AccumulateSubsampleSettings, FreshRealSettings],
    Field(discriminator="kind"),
]
