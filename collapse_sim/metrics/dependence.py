"""Distance correlation (Székely, Rizzo & Bakirov 2007) and its bias-corrected square
(Székely & Rizzo 2014), multivariate, with the semantics of the ``dcor`` package.

Both centrings reduce to Σ a∘b and the row sums of the two distance matrices, so
one chunked pass over distance blocks suffices and no n×n matrix is stored.
"""
from __future__ import annotations

import torch

from ._pairwise import as_paired, distance_moments, require_rows


def _dcov_sqr(n: int, s_ab, rows_a, rows_b, unbiased: bool):
    """dCov² from Σ a_ij b_ij and row sums: double-centred (V-statistic) or U-centred."""
    cross = torch.dot(rows_a, rows_b)
    totals = rows_a.sum() * rows_b.sum()
    if unbiased:
        return (s_ab - 2.0 * cross / (n - 2) + totals / ((n - 1) * (n - 2))) / (n * (n - 3))
    return (s_ab - 2.0 * cross / n + totals / n**2) / n**2


def _dcor_sqr(X, Y, metric: str, unbiased: bool, device) -> float:
    X, Y = as_paired(X, Y, metric=metric, device=device)
    n = X.shape[0]
    require_rows(metric, n, minimum=4 if unbiased else 2)
    s_ab, s_aa, s_bb, rows_a, rows_b = distance_moments(X, Y)
    cov_xy = _dcov_sqr(n, s_ab, rows_a, rows_b, unbiased)
    var_x = _dcov_sqr(n, s_aa, rows_a, rows_a, unbiased)
    var_y = _dcov_sqr(n, s_bb, rows_b, rows_b, unbiased)
    denominator = (var_x * var_y).abs().sqrt()
    if float(denominator) == 0.0:  # a constant sample: no dependence measurable (dcor returns 0)
        return 0.0
    return float(cov_xy / denominator)


def distance_correlation(X, Y, *, device=None) -> float:
    """Biased (V-statistic) dCor in [0, 1]; 0 iff the samples' distance structures are unrelated."""
    return min(1.0, max(0.0, _dcor_sqr(X, Y, "distance_correlation", False, device))) ** 0.5


def u_distance_correlation_sqr(X, Y, *, device=None) -> float:
    """Bias-corrected dCor²: unbiased under independence (≈0), so it may be slightly negative."""
    return _dcor_sqr(X, Y, "u_distance_correlation_sqr", True, device)
