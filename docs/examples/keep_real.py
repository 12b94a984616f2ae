"""keep-real: replace, but keep a fixed share of generation 0's real data.

Every generation trains on the newest synthetic pool plus the same subset of generation 0's
real structures: `real_share` of them, drawn once (for generation 1) and carried forward.
Unlike `fresh-real`, it asks the oracle for nothing new: it measures how much of the
original real data must be kept to hold a lineage up. Like every policy it keeps no state: the
kept subset is carried forward in the lineage's history, not on the policy.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from collapse_sim.policies import KINDS, Policy, PolicySettingsBase, Selection


class KeepRealSettings(PolicySettingsBase):
    """The newest synthetic pool plus a fixed share of generation 0's real data."""

    kind: Literal["keep-real"]
    real_share: float = Field(ge=0.0, le=1.0, description="share of generation 0's real structures kept")


class KeepReal(Policy):
    def select(self, history, offered, request, rng):
        if len(history) == 1:  # generation 1: draw the kept subset from generation 0's real data
            share = self.settings.real_share
            kept = [pool.sample(round(share * len(pool)), rng) for pool in history[0].train]
        else:  # later generations: the real pools of the previous training set, unchanged
            kept = [pool for pool in history[-1].train if pool.origin == "real"]
        return Selection([pool for pool in kept if len(pool)] + [offered.synthetic])


KINDS.register(KeepRealSettings, KeepReal)
