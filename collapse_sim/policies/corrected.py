"""Corrected: part of the synthetic pool has its labels moved toward the oracle's.

Gillman et al. 2024 (arXiv 2402.07087, "Self-correcting self-consuming loops for generative
model training"): each synthetic point is replaced by t·target + (1 − t)·synthetic with
t = γ/(1 + γ), γ >= 0 the correction strength (γ = 0: no correction; γ → ∞: the oracle's
label). Here the oracle labels a random ``fraction`` of each generation's synthetic pool (one
oracle call per structure) and, for those, energy, forces (and stress where both label sets
have it) become t·oracle + (1 − t)·model; the geometry is the model's sample. The training
set is the whole pool, corrected where checked (as ``replace``, with corrections), less the
structures the oracle's calculation failed on (no label to move towards).
"""
from __future__ import annotations

from typing import Literal

from ase import Atoms
from pydantic import Field

from collapse_sim.data.pools import Pool
from collapse_sim.data.structures import ORACLE_CHECKED, attach_labels
from collapse_sim.policies.base import KINDS, OracleRequest, Policy, PolicySettingsBase, Selection, random_fraction


class CorrectedSettings(PolicySettingsBase):
    """The newest synthetic pool, a fraction of its labels corrected toward the oracle's."""

    kind: Literal["corrected"]
    fraction: float = Field(1.0, ge=0.0, le=1.0, description="share of each synthetic pool whose labels are corrected")
    gamma: float = Field(ge=0.0, description="correction strength γ: labels move t = γ/(1+γ) of the way "
                                             "to the oracle's")

    @property
    def t(self) -> float:
        return self.gamma / (1.0 + self.gamma)


def corrected_labels(model_labelled: Atoms, oracle_labelled: Atoms, t: float) -> Atoms:
    """The oracle-labelled copy (its provenance) carrying t·oracle + (1 − t)·model labels."""
    model, oracle = model_labelled.calc.results, oracle_labelled.calc.results
    mix = {k: t * oracle[k] + (1.0 - t) * model[k]
           for k in ("energy", "forces", "stress") if k in model and k in oracle}
    out = attach_labels(oracle_labelled, mix["energy"], mix["forces"], mix.get("stress"))
    out.info[ORACLE_CHECKED] = f"{oracle_labelled.info.get(ORACLE_CHECKED, 'oracle')} corrected t={t:g}"
    return out


class Corrected(Policy):
    def request(self, history, synthetic, rng, predict_with=None):
        return OracleRequest(indices=random_fraction(len(synthetic), self.settings.fraction, rng))

    def select(self, history, offered, request, rng):
        synthetic = offered.synthetic
        structures = list(synthetic.structures)
        for i, oracle in offered.checked.items():
            structures[i] = corrected_labels(structures[i], oracle, self.settings.t)
        kept = tuple(a for i, a in enumerate(structures) if i not in offered.failed)  # no label to correct towards
        return Selection([Pool(synthetic.origin, synthetic.generation, kept)])


KINDS.register(CorrectedSettings, Corrected)
