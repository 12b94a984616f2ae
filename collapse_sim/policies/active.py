"""Active: a committee's trust window decides which synthetic structures the oracle labels.

DP-GEN (Zhang et al. 2020, Comput. Phys. Commun. 253, 107206): a committee of models labels
every sampled structure; the structure's deviation is the committee's max force deviation

    ε = max_i sqrt( mean_m |F_i^m − mean_m' F_i^m'|² )      (i: atoms, m: committee members; eV/Å)

and ε decides: ε < ``lo``: trusted, kept with the sampling model's labels; ``lo`` <= ε <= ``hi``
(both edges inclusive): a candidate, labelled by the oracle (one call each) and kept with the
oracle's labels; ε > ``hi``: discarded (an unphysical frame the oracle should not be asked about).
With ``max_oracle`` set, only the most-deviating candidates (ties: the lower index first) go to
the oracle; the rest are discarded with the too-deviating ones, as are candidates the oracle's
calculation failed on (DP-GEN drops the frames its DFT does not converge on).

The committee: the lineage's own models of the last ``committee`` generations; at generation g
those of generations max(0, g − K) .. g − 1 (the newest is the one that sampled the pool). A
lineage's models differ by training data and seed, so they disagree where the data is thin —
DP-GEN's committee differs by seed only. At generation 1 only generation 0's model exists and no
deviation is defined: every structure then counts as a candidate (DP-GEN's first iteration asks
the oracle too), ``max_oracle`` of them drawn at random (all of them without a budget).

Carried forward as ``accumulate``: the previous training set, plus the trusted structures (model
labels) and the oracle-labelled candidates of this generation.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from collapse_sim.data.pools import Pool
from collapse_sim.data.structures import forces_of
from collapse_sim.policies.base import KINDS, OracleRequest, Policy, PolicySettingsBase, Selection, checked_pool

TRUSTED, CANDIDATE, DISCARDED = "trusted", "candidate", "discarded"
#: percentiles of the committee deviations recorded in the row (``policy_deviation_p10`` ...): the
#: distribution a trust window is calibrated from
DEVIATION_QUANTILES = (10, 50, 90)


class ActiveSettings(PolicySettingsBase):
    """DP-GEN trust window: the oracle labels the structures a committee of the lineage's models disagrees on."""

    kind: Literal["active"]
    lo: float = Field(ge=0.0, description="eV/Å: a structure whose committee max force deviation is below this is "
                      "trusted (kept with the model's labels); DP-GEN examples 0.05–0.15")
    hi: float = Field(ge=0.0, description="eV/Å: above this a structure is discarded; from lo to hi (both inclusive) "
                      "the oracle labels it")
    committee: int = Field(3, ge=2, description="committee size K: the lineage's models of the last K generations "
                           "(fewer early on; with one model every structure is a candidate)")
    max_oracle: int | None = Field(None, ge=0, description="most oracle labels per generation: the most-deviating "
                                   "candidates first, the others discarded; default: no limit")

    @model_validator(mode="after")
    def _window(self) -> ActiveSettings:
        if self.lo > self.hi:
            raise ValueError(f"active: lo ({self.lo} eV/Å) must not exceed hi ({self.hi} eV/Å)")
        return self


def max_force_deviation(forces: np.ndarray) -> float:
    """DP-GEN's ε from one structure's committee forces, shape (members, atoms, 3):
    max over atoms of sqrt(mean over members of |F − mean F|²)."""
    forces = np.asarray(forces, dtype=float)
    spread = forces - forces.mean(axis=0)
    return float(np.sqrt((spread ** 2).sum(axis=2).mean(axis=0)).max())


def classify(deviations: Sequence[float], lo: float, hi: float) -> list[str]:
    """Each deviation's class: trusted below ``lo``, candidate in [lo, hi], discarded above ``hi``."""
    return [TRUSTED if d < lo else DISCARDED if d > hi else CANDIDATE for d in deviations]


def select_candidates(deviations: Sequence[float], classes: Sequence[str], max_oracle: int | None) -> list[int]:
    """The candidates the oracle labels, sorted: all of them, or the ``max_oracle`` most deviating
    (ties: lower index first)."""
    candidates = [i for i, c in enumerate(classes) if c == CANDIDATE]
    if max_oracle is not None and len(candidates) > max_oracle:
        candidates = sorted(candidates, key=lambda i: (-deviations[i], i))[:max_oracle]
    return sorted(candidates)


def committee_generations(newest: int, size: int) -> list[int]:
    """The generations whose models judge the pool that generation ``newest``'s model sampled."""
    return list(range(max(0, newest - size + 1), newest + 1))


@dataclass(frozen=True)
class Window:
    """One generation's decision, carried from ``request`` to ``select`` as the request's note."""

    generation: int  # of the synthetic pool
    size: int
    classes: list[str]
    requested: list[int]
    deviations: list[float]  # NaN with a one-model committee


class Active(Policy):
    def request(self, history, synthetic: Pool, rng, predict_with: Callable | None = None) -> OracleRequest:
        s, n = self.settings, len(synthetic)
        members = committee_generations(synthetic.generation, s.committee)
        if len(members) >= 2:
            if predict_with is None:
                raise ValueError("active: the committee's predictions are needed (the loop passes predict_with)")
            structures = list(synthetic.structures)
            forces = [[forces_of(a) for a in predict_with(g, structures)] for g in members]
            deviations = [max_force_deviation(np.stack([member[i] for member in forces])) for i in range(n)]
            classes = classify(deviations, s.lo, s.hi)
            requested = select_candidates(deviations, classes, s.max_oracle)
        else:  # one model: no deviation; every structure is a candidate, a random max_oracle of them asked
            deviations, classes = [float("nan")] * n, [CANDIDATE] * n
            budget = n if s.max_oracle is None else min(n, s.max_oracle)
            requested = sorted(rng.choice(n, size=budget, replace=False).tolist())
        return OracleRequest(indices=requested, note=Window(synthetic.generation, n, classes, requested, deviations))

    def select(self, history, offered, request, rng) -> Selection:
        w, synthetic, checked = request.note, offered.synthetic, offered.checked
        if not isinstance(w, Window) or (w.generation, w.size) != (synthetic.generation, len(synthetic)):
            raise ValueError("active: select needs the request made for this synthetic pool (its window as note)")
        if sorted([*checked, *offered.failed]) != w.requested:  # failed: dropped, as above hi
            raise ValueError(f"active: oracle labels for {sorted(checked)} (failed: {sorted(offered.failed)}), "
                             f"requested {w.requested}")
        trusted = [i for i, c in enumerate(w.classes) if c == TRUSTED]
        pools = list(history[-1].train)
        if trusted:
            pools.append(synthetic.subset(trusted))
        if checked:
            pools.append(checked_pool(synthetic, checked))
        counts = dict(policy_kept=len(trusted), policy_oracle_labelled=len(checked),
                      policy_rejected=w.size - len(trusted) - len(checked))
        measured = np.asarray(w.deviations, dtype=float)
        measured = measured[np.isfinite(measured)]
        if len(measured):  # where the window should sit: the deviations this committee produces
            for q in DEVIATION_QUANTILES:
                counts[f"policy_deviation_p{q}"] = float(np.percentile(measured, q))
        return Selection(pools, counts)


KINDS.register(ActiveSettings, Active)
