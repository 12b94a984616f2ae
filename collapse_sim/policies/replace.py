"""Replace: each model trains only on its predecessor's samples (the classic collapse setting)."""
from __future__ import annotations

from typing import Literal

from collapse_sim.policies.base import KINDS, Policy, PolicySettingsBase, Selection


class ReplaceSettings(PolicySettingsBase):
    """Train only on the newest synthetic data."""

    kind: Literal["replace"]


class Replace(Policy):
    def select(self, history, offered, request, rng):
        return Selection([offered.synthetic])


KINDS.register(ReplaceSettings, Replace)
