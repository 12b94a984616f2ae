"""One-call bundles of the metrics the collapse loop logs every generation."""
from __future__ import annotations

from ._pairwise import as_paired
from .alignment import _cknna, _mutual_knn, _neighbours
from .dependence import distance_correlation
from .diversity import coverage, vendi_score
from .information_imbalance import information_imbalances
from .intrinsic_dimension import id_twonn


def alignment_metrics(X, Y, k: int = 10, *, device=None) -> dict[str, float]:
    """CKNNA and mutual kNN (sharing one kNN search), dCor and both information imbalances (k=1)."""
    X, Y = as_paired(X, Y, metric="alignment_metrics", device=device)
    n, sims_x, idx_x, sims_y, idx_y = _neighbours(X, Y, k, None, "alignment_metrics", None, for_cknna=True)
    x_to_y, y_to_x = information_imbalances(X, Y)
    return {
        "cknna": _cknna(n, sims_x, idx_x, sims_y, idx_y, self_terms="own"),
        "mknn": _mutual_knn(n, k, idx_x, idx_y),
        "dcor": distance_correlation(X, Y),
        "ii_x_to_y": x_to_y,
        "ii_y_to_x": y_to_x,
    }


def diversity_metrics(D, reference=None, *, k: int = 5, device=None) -> dict[str, float]:
    """TwoNN dimension and cosine Vendi score of D; coverage of ``reference`` by D when given."""
    out = {"id_twonn": id_twonn(D, device=device), "vendi": vendi_score(D, device=device)}
    if reference is not None:
        out["coverage"] = coverage(D, reference, k=k, device=device)
    return out
