"""Curated: a diverse training set picked from everything available, at a fixed budget.

Farthest-point sampling (Gonzalez 1985; the usual diversity selection of MLIP training sets)
over all pools the lineage has seen (generation 0's real data, every synthetic pool and any
fresh real data), in descriptor space: the first structure is drawn with the policy's random
stream, each next one is the structure farthest (Euclidean) from those already chosen, ties to
the lowest index. Descriptors: the per-structure mean SOAP that the metric suite uses
(``metrics.structure_descriptors``, its default r_cut 5 Å, n_max 4, l_max 3, over the elements
present), standardised per feature with the candidates' own mean and spread, because the
reference real data that scales the metrics' descriptors is not visible to a policy. A budget
at least the number of candidates keeps them all (a clamp, as ``accumulate-subsample``).
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from collapse_sim.data.pools import flatten
from collapse_sim.policies.accumulate_subsample import AccumulateSubsample
from collapse_sim.policies.base import KINDS, PolicySettingsBase


class CuratedSettings(PolicySettingsBase):
    """All data so far, reduced to a fixed budget by farthest-point sampling of SOAP descriptors."""

    kind: Literal["curated"]
    budget: int | None = Field(None, ge=1, description="training-set size; default: size of the real data; at "
                               "least the data available keeps it all")


def farthest_point_sampling(points: np.ndarray, k: int, first: int) -> list[int]:
    """``k`` row indices of ``points``: ``first``, then each time the row farthest from the chosen ones."""
    chosen = [first]
    distance = np.linalg.norm(points - points[first], axis=1)
    while len(chosen) < min(k, len(points)):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return chosen


def standardised_soap(structures) -> np.ndarray:
    from collapse_sim.metrics import structure_descriptors  # dscribe: imported only when curating

    raw = structure_descriptors(structures)
    spread = raw.std(axis=0)
    return (raw - raw.mean(axis=0)) / np.where(spread > 0, spread, 1.0)


class Curated(AccumulateSubsample):
    """``accumulate-subsample`` with farthest-point sampling instead of a uniform draw."""

    def pick(self, pools, budget: int, total: int, rng) -> np.ndarray:
        return np.array(farthest_point_sampling(standardised_soap(flatten(pools)), budget, int(rng.integers(total))))


KINDS.register(CuratedSettings, Curated)
