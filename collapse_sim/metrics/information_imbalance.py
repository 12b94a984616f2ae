"""Information imbalance Δ(X→Y) of Glielmo et al. 2022 (PNAS Nexus), with the semantics of
DADApy's ``MetricComparisons.return_inf_imb_two_selected_coords`` (Euclidean distances,
Δ = mean rank / (n/2)).

Only the rank of each point's X-neighbours within its own Y-row is needed, so ranks are
counted per row block; the n×n rank matrix is never sorted or stored.
"""
from __future__ import annotations

from ._pairwise import as_paired, require_positive_int, require_rows, scan


def _checked(X, Y, k, metric, device):
    require_positive_int(metric, "k", k)
    X, Y = as_paired(X, Y, metric=metric, device=device)
    require_rows(metric, X.shape[0], k)
    return X, Y


def information_imbalance(X, Y, k: int = 1, *, device=None) -> float:
    """Δ(X→Y) = (2/n) · mean over i (and over i's k nearest X-neighbours j) of rank_Y(i, j).

    ≈0: X's neighbourhoods predict Y's; ≈1: X carries no information on Y.
    Its minimum, reached for Y = X, is (k + 1)/n. Ties in Y get the mid-rank.
    """
    X, Y = _checked(X, Y, k, "information_imbalance", device)
    (_, neighbours_x), _ = scan(X, k=k)
    _, ranks_in_y = scan(Y, rank_of=neighbours_x)
    return float(2.0 * ranks_in_y.mean() / X.shape[0])


def information_imbalances(X, Y, k: int = 1, *, device=None) -> tuple[float, float]:
    """(Δ(X→Y), Δ(Y→X)) in three distance passes instead of four: the pass that finds
    X's neighbours also ranks Y's neighbours in X."""
    X, Y = _checked(X, Y, k, "information_imbalances", device)
    n = X.shape[0]
    (_, neighbours_y), _ = scan(Y, k=k)
    (_, neighbours_x), ranks_in_x = scan(X, k=k, rank_of=neighbours_y)
    _, ranks_in_y = scan(Y, rank_of=neighbours_x)
    return float(2.0 * ranks_in_y.mean() / n), float(2.0 * ranks_in_x.mean() / n)
