"""Verified: the oracle checks part of the synthetic pool and wrong labels are pruned.

Feng et al. 2024 (arXiv 2406.07515, "Beyond model collapse: scaling up with synthesized data
requires verification"): a verifier that keeps correct labels and discards wrong ones
restores learning from synthetic data; with an oracle verifier, learning survives any label
error rate. Here the oracle labels a random ``check_fraction`` of each generation's synthetic
pool (one oracle call per structure); a checked structure's error is the largest per-atom
force deviation, max_i |F_model,i − F_oracle,i| (Euclidean norm of the 3-vector, eV/Å), and
the structure is kept, with its model label, only if that error is strictly below
``max_force_error`` (an error equal to it is a failure), and, with ``max_energy_error``, its
energy error per atom below that too. An imperfect verifier keeps a passing
structure with probability ``keep_passed`` (ϕ) and a failing one with ``keep_failed`` (ψ):
Feng et al.'s learning breaks down above the label-error rate p* = 1/(1 + ψ/ϕ). Unchecked structures are kept or
dropped according to ``unchecked``; ``add_oracle_labelled`` also trains on the oracle-labelled
copies of every checked structure (their ``origin`` stays "synthetic"). A structure the
oracle's calculation failed on fails its check. When nothing is left
the lineage ends there (``collapse_sim.generation.LineageEnded``).

``verifier: teacher`` checks with the scenario's teacher (a frozen model, e.g. a foundation
potential) instead of the oracle: a verifier that is itself wrong by a measured amount (its
``teacher_rmse_*``), at no oracle call. Yi et al. (ICLR 2026, arXiv 2510.16657) find that
retraining on verifier-filtered data converges to the verifier's "knowledge centre", not to the
truth: the rows' errors against the truth (``rmse_*``) and against the teacher
(``rmse_*_teacher``) show which one a lineage approaches.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from ase import Atoms
from pydantic import Field

from collapse_sim.data.structures import energy_of, forces_of
from collapse_sim.policies.base import (
    KINDS,
    OracleRequest,
    Policy,
    PolicySettingsBase,
    Selection,
    checked_pool,
    random_fraction,
)


class VerifiedSettings(PolicySettingsBase):
    """The newest synthetic pool, pruned by oracle checks of its force labels."""

    kind: Literal["verified"]
    check_fraction: float = Field(1.0, ge=0.0, le=1.0, description="share of each synthetic pool the oracle checks")
    max_force_error: float = Field(gt=0.0, description="eV/Å: a checked structure is kept if its largest per-atom "
                                   "force error is strictly below this")
    max_energy_error: float | None = Field(None, gt=0.0, description="eV/atom: if set, a checked structure must "
                                           "also have |E_model - E_oracle| / atoms strictly below this")
    unchecked: Literal["keep", "drop"] = Field("drop", description="what becomes of the structures not checked")
    add_oracle_labelled: bool = Field(False, description="also train on the oracle-labelled copies of the checked "
                                      "structures")
    keep_passed: float = Field(1.0, ge=0.0, le=1.0, description="probability that a checked structure that passes "
                               "is kept (the verifier's phi; 1: an oracle verifier)")
    keep_failed: float = Field(0.0, ge=0.0, le=1.0, description="probability that a checked structure that fails "
                               "is kept anyway (the verifier's psi; 0: an oracle verifier)")
    verifier: Literal["oracle", "teacher"] = Field(
        "oracle", description="who labels the checked structures: the oracle, or the scenario's `teacher` (a frozen "
        "model: an imperfect verifier whose own errors are measured; no oracle calls). The teacher's energies are "
        "compared (`max_energy_error`) and, with `add_oracle_labelled`, trained on as they are: with a teacher "
        "whose energy zero differs from the oracle's, use neither")

    def check(self, scenario) -> None:
        if self.verifier == "teacher" and scenario.teacher is None:
            raise ValueError("verifier: 'teacher' needs a teacher (a frozen model) in the scenario")


def energy_error(model_labelled: Atoms, oracle_labelled: Atoms) -> float:
    """|E_model − E_oracle| per atom (eV/atom)."""
    return abs(energy_of(model_labelled) - energy_of(oracle_labelled)) / len(oracle_labelled)


def force_error(model_labelled: Atoms, oracle_labelled: Atoms) -> float:
    """max over atoms of |F_model − F_oracle| (eV/Å)."""
    return float(np.linalg.norm(forces_of(model_labelled) - forces_of(oracle_labelled), axis=1).max())


class Verified(Policy):
    def request(self, history, synthetic, rng, predict_with=None):
        return OracleRequest(indices=random_fraction(len(synthetic), self.settings.check_fraction, rng),
                             verifier=self.settings.verifier)

    def select(self, history, offered, request, rng):
        s, fresh_synthetic, checked = self.settings, offered.synthetic, offered.checked
        errors = {i: force_error(fresh_synthetic.structures[i], oracle) for i, oracle in checked.items()}
        passed = {i for i, error in errors.items() if error < s.max_force_error}
        if s.max_energy_error is not None:
            passed = {i for i in passed if energy_error(fresh_synthetic.structures[i], checked[i]) < s.max_energy_error}
        if s.keep_passed < 1.0 or s.keep_failed > 0.0:  # an imperfect verifier: keeps by chance
            draws = dict(zip(sorted(errors), rng.random(len(errors))))
            passed = {i for i in errors if draws[i] < (s.keep_passed if i in passed else s.keep_failed)}
        unchecked = ({i for i in range(len(fresh_synthetic)) if i not in checked and i not in offered.failed}
                     if s.unchecked == "keep" else set())  # a failed check fails
        kept = sorted(passed | unchecked)
        pools = [fresh_synthetic.subset(kept)] if kept else []
        if s.add_oracle_labelled and checked:
            pools.append(checked_pool(fresh_synthetic, checked))
        counts = dict(policy_kept=len(kept), policy_rejected=len(fresh_synthetic) - len(kept),
                      policy_oracle_labelled=len(checked) if s.add_oracle_labelled else 0)
        return Selection(pools, counts)  # empty when every checked label failed and unchecked is drop


KINDS.register(VerifiedSettings, Verified)
