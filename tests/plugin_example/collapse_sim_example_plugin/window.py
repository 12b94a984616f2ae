"""sliding-window: train on the newest ``window`` pools only, so old data ages out.

Generation 1 trains on generation 0's real data and the first synthetic pool; from then on each
training set is the previous one plus the new synthetic pool, cut to its ``window`` newest pools
(real data counts as generation 0). ``window: 1`` is ``replace``; a large window is ``accumulate``.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveInt

from collapse_sim.policies import KINDS, Policy, PolicySettingsBase, Selection


class SlidingWindowSettings(PolicySettingsBase):
    """The newest ``window`` pools of the previous training set and the new synthetic pool."""

    kind: Literal["sliding-window"]
    window: PositiveInt = Field(2, description="pools kept: the newest, by producing generation")


class SlidingWindow(Policy):
    def select(self, history, offered, request, rng):
        pools = [*history[-1].train, offered.synthetic]
        newest = sorted(pools, key=lambda pool: pool.generation)[-self.settings.window:]
        return Selection([pool for pool in pools if any(pool is kept for kept in newest)])


KINDS.register(SlidingWindowSettings, SlidingWindow)
