"""Intrinsic dimension from nearest-neighbour distance ratios: TwoNN (Facco et al. 2017) and
GRIDE (Denti et al. 2022), matching DADApy's ``compute_id_2NN`` and ``return_id_scaling_gride``.

Points whose lower-order neighbour sits at distance 0 (exact duplicates) have an
undefined ratio and are dropped, so duplicates never turn into inf/NaN.
"""
from __future__ import annotations

import itertools

import torch

from ._pairwise import as_matrix, knn, quantile, require_rows

_EPS = torch.finfo(torch.float64).eps
_BISECTION_STEPS = 80  # halves [d0, d1] far below float64 resolution


def _ratios(r_low: torch.Tensor, r_high: torch.Tensor, metric: str) -> torch.Tensor:
    keep = r_low > 0
    if int(keep.sum()) < 3:
        raise ValueError(f"{metric}: fewer than 3 points with a non-zero neighbour distance (all duplicates?)")
    return r_high[keep] / r_low[keep]


def id_twonn(X, method: str = "regression", *, fraction: float = 0.9, device=None) -> float:
    """TwoNN intrinsic dimension from μ = r2/r1.

    "regression" (DADApy default): least-squares slope through the origin of
    −log(1 − i/N) against the sorted log μ, on the lowest ``fraction`` of μ (the tail is
    noise-dominated). "ml": (N − 1)/Σ log μ.
    """
    metric = "id_twonn"
    X = as_matrix(X, metric=metric, device=device)
    require_rows(metric, X.shape[0], 2)
    distances, _ = knn(X, k=2)
    log_mu = _ratios(distances[:, 0], distances[:, 1], metric).log()
    n = log_mu.numel()
    if method == "ml":
        total = log_mu.sum()
        if float(total) == 0.0:
            raise ValueError(f"{metric}: every point has r2 == r1 (perfect ties); the dimension is undefined")
        return float((n - 1) / total)
    if method != "regression":
        raise ValueError(f"{metric}: method must be 'regression' or 'ml', got {method!r}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{metric}: regression needs 0 < fraction < 1 (method='ml' uses all points), got {fraction}")
    n_fit = int(n * fraction)
    x = log_mu.sort().values[:n_fit]
    y = -torch.log1p(-torch.arange(1, n_fit + 1, dtype=x.dtype, device=x.device) / n)
    sxx = torch.dot(x, x)
    if n_fit == 0 or float(sxx) == 0.0:
        raise ValueError(f"{metric}: the fitted ratios are all 1 (perfect ties); the dimension is undefined")
    return float(torch.dot(x, y) / sxx)


def _filter_outlier_ratios(mu: torch.Tensor) -> torch.Tensor:
    """DADApy's GRIDE guard: drop μ ≥ q50 + 20·(q95 − q50), typical of near-overlapping points."""
    q95, q50 = quantile(mu, 0.95), quantile(mu, 0.5)
    return mu[mu < q50 + 20.0 * (q95 - q50)]


def _gride_neg_score(d, log_mu, n1: int, n2: int, eps: float):
    """−∂/∂d of the GRIDE log-likelihood (with DADApy's N − 1 and its clamp of 1 − μ^-d at 2·eps)."""
    one_minus = (-torch.expm1(-d * log_mu)).clamp_min(2.0 * eps)
    return (((1 - n2 + n1) / one_minus + (n2 - 1.0)) * log_mu).sum() - (log_mu.numel() - 1) / d


def _gride_fit(mu: torch.Tensor, n1: int, n2: int, d0: float, d1: float, eps: float) -> torch.Tensor:
    """Bisection of the (monotone) score on [d0, d1], as DADApy does, run to float64 resolution."""
    log_mu = mu.log()
    lo, hi = mu.new_tensor(d0), mu.new_tensor(d1)
    sign_hi = torch.sign(_gride_neg_score(hi, log_mu, n1, n2, eps))
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        same_side = torch.sign(_gride_neg_score(mid, log_mu, n1, n2, eps)) * sign_hi > 0
        hi = torch.where(same_side, mid, hi)
        lo = torch.where(same_side, lo, mid)
    return 0.5 * (lo + hi)


def _gride_error(d, mu: torch.Tensor, n1: int, n2: int) -> torch.Tensor:
    """Standard error from the Fisher information (DADApy's regularisation of 1 − μ^-d)."""
    log_mu = mu.log()
    mu_pow = torch.exp(-d * log_mu)
    one_minus = (1.0 - mu_pow).clamp_min(5 * _EPS)
    info = mu.numel() / d**2 + ((n2 - n1 - 1) * (log_mu / one_minus).square() * mu_pow).sum()
    return info.rsqrt()


def id_gride(
    X, range_max: int = 64, *, d0: float = 0.001, d1: float = 1000.0, eps: float = 1e-7, device=None
) -> list[dict[str, float]]:
    """Intrinsic dimension as a function of scale (GRIDE on μ = r_{2k}/r_k, k = 1, 2, 4, … < range_max).

    Returns one dict per scale: ``n1`` = k, ``n2`` = 2k (neighbour orders), ``mean_distance``
    (mean of r_k and r_2k over all points, DADApy's scale), ``id`` and ``id_err``.
    Roughly constant ``id`` across scales means a well-defined dimension; a drift shows
    noise at small scales or curvature at large ones.
    """
    metric = "id_gride"
    X = as_matrix(X, metric=metric, device=device)
    n = X.shape[0]
    require_rows(metric, n, 2)
    if range_max < 2:
        raise ValueError(f"{metric}: range_max must be >= 2, got {range_max}")
    max_rank = min(n - 1, int(range_max))
    orders = [2**i for i in range(max_rank.bit_length())]  # 1, 2, 4, ... <= max_rank
    distances, _ = knn(X, k=orders[-1])
    results = []
    for n1, n2 in itertools.pairwise(orders):
        r_low, r_high = distances[:, n1 - 1], distances[:, n2 - 1]
        mu = _ratios(r_low, r_high, metric)
        mu = torch.where(mu == 1.0, mu + 10 * _EPS, mu)  # as DADApy: keep ties off the singular point
        d = _gride_fit(_filter_outlier_ratios(mu), n1, n2, d0, d1, eps)
        results.append(
            {
                "n1": n1,
                "n2": n2,
                "mean_distance": float(0.5 * (r_low.mean() + r_high.mean())),
                "id": float(d),
                "id_err": float(_gride_error(d, mu, n1, n2)),
            }
        )
    return results
