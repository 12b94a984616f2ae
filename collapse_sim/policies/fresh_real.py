"""Fresh real data: a fraction of every generation's training set comes from the oracle."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from collapse_sim.policies.base import KINDS, OracleRequest, Policy, PolicySettingsBase, Selection


class FreshRealSettings(PolicySettingsBase):
    """A fraction of each generation's set is new oracle data, the rest synthetic."""

    kind: Literal["fresh-real"]
    real_fraction: float = Field(ge=0.0, le=1.0, description="share of each generation's set that is new oracle data")
    labeller: Literal["oracle", "reference_oracle"] = Field(
        "oracle", description="who makes and labels the new data: `oracle` (default), or `reference_oracle`, the "
        "probes' labeller: in a distillation chain, where `oracle` is the teacher, fresh data from the truth")

    def check(self, scenario) -> None:
        if self.labeller == "reference_oracle" and scenario.reference_oracle is None:
            raise ValueError("labeller: 'reference_oracle' needs a reference_oracle")


class FreshReal(Policy):
    """Each generation's set has the synthetic pool's size; a fraction of it is new oracle data."""

    def request(self, history, synthetic, rng, predict_with=None):
        return OracleRequest(fresh_real=int(round(self.settings.real_fraction * len(synthetic))),
                             fresh_real_labeller=self.settings.labeller)

    def select(self, history, offered, request, rng):
        fresh_real = offered.fresh_real
        n_real = len(fresh_real) if fresh_real is not None else 0
        synthetic = offered.synthetic.sample(len(offered.synthetic) - n_real, rng)
        return Selection([p for p in (fresh_real, synthetic) if p is not None and len(p)])


KINDS.register(FreshRealSettings, FreshReal)
