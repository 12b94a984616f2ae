"""Replace: each model trains only on its predecessor's samples (the classic collapse setting)."""
from __future__ import annotations

from typing import Literal

from collapse_sim.policies.base import KINDS, Policy, PolicySettingsBase


class ReplaceSettings(PolicySettingsBase):
    """Train only on the newest synthetic data."""

    kind: Literal["replace"]


class Replace(Policy):
    def next_training_set(self, history, fresh_real, fresh_synthetic, checked, rng):
        return [fresh_synthetic]


KINDS.register(ReplaceSettings, Replace)
