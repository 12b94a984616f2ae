"""Accumulate, then subsample to a fixed budget: all data so far, at constant training cost."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from collapse_sim.data.pools import Pool
from collapse_sim.policies.base import KINDS, GenerationData, Policy, PolicySettingsBase, Selection, subset_pools


class AccumulateSubsampleSettings(PolicySettingsBase):
    """All data so far, subsampled uniformly to a fixed budget."""

    kind: Literal["accumulate-subsample"]
    budget: int | None = Field(None, ge=1, description="training-set size; default: size of the real data")


def all_pools(history: Sequence[GenerationData], fresh: Sequence[Pool | None]) -> list[Pool]:
    """Every pool the lineage has seen: generation 0's real data, then each generation's fresh pools."""
    pools = list(history[0].train)
    for record in history[1:]:
        pools += [p for p in (record.fresh_real, record.synthetic) if p is not None]
    return pools + [p for p in fresh if p is not None]


def training_budget(budget: int | None, history: Sequence[GenerationData]) -> int:
    """A policy's ``budget`` setting, by default the size of generation 0's real data."""
    return budget or sum(len(p) for p in history[0].train)


class AccumulateSubsample(Policy):
    """All pools so far, cut to the budget by ``pick`` (here: uniformly at random)."""

    def select(self, history, offered, request, rng):
        fresh_synthetic = offered.synthetic
        pools = all_pools(history, [offered.fresh_real, fresh_synthetic])
        budget, total = training_budget(self.settings.budget, history), sum(len(p) for p in pools)
        chosen = np.arange(total) if budget >= total else np.sort(self.pick(pools, budget, total, rng))
        kept = int((chosen >= total - len(fresh_synthetic)).sum())  # the fresh synthetic pool comes last
        counts = dict(policy_kept=kept, policy_oracle_labelled=0, policy_rejected=len(fresh_synthetic) - kept)
        return Selection(pools if budget >= total else subset_pools(pools, chosen), counts)

    def pick(self, pools, budget: int, total: int, rng) -> np.ndarray:
        """``budget`` distinct indices into the concatenated ``pools`` (``total`` structures)."""
        return rng.choice(total, size=budget, replace=False)


KINDS.register(AccumulateSubsampleSettings, AccumulateSubsample)
