"""Accumulate: data is never thrown away, so the real data stays in every training set."""
from __future__ import annotations

from typing import Literal

from collapse_sim.policies.base import KINDS, Policy, PolicySettingsBase, Selection


class AccumulateSettings(PolicySettingsBase):
    """Train on all data so far (real generation-0 data plus every synthetic pool)."""

    kind: Literal["accumulate"]


class Accumulate(Policy):
    def select(self, history, offered, request, rng):
        return Selection(list(history[-1].train) + [offered.synthetic])


KINDS.register(AccumulateSettings, Accumulate)
