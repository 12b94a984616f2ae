"""An oracle that is exactly linear in the linear model's descriptor, so that the
fixed-design regression laws of model collapse hold exactly (``collapse-sim validate-theory``).

``LinearTruth(weights=[...], n_basis=..., r_cut=..., r_min=..., width=...)``: energy = w*·φ with
φ the :class:`collapse_sim.models.linear.PairBasis` descriptor (basis keywords and defaults as
in the ``linear`` model settings); forces and stress are its exact gradients. Label noise is
not the calculator's business: set ``oracle.energy_noise`` in the scenario.
"""
from __future__ import annotations

from collapse_sim.models.linear import LinearCalculator, LinearSettings, PairBasis

BASIS_KEYS = ("n_basis", "r_cut", "r_min", "width")


def truth_basis(kwargs: dict) -> dict:
    """The basis settings an oracle's kwargs describe, defaults filled in as for the linear model."""
    unknown = set(kwargs) - set(BASIS_KEYS) - {"weights"}
    if unknown:
        raise ValueError(f"LinearTruth: unknown keyword(s) {sorted(unknown)}")
    return LinearSettings(kind="linear", **{k: kwargs[k] for k in BASIS_KEYS if k in kwargs}).basis


class LinearTruth(LinearCalculator):
    def __init__(self, weights, **basis):
        settings = truth_basis(basis)
        super().__init__(PairBasis(**settings), weights)
