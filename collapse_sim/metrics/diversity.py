"""Diversity of one set of structures: Vendi score (Friedman & Dieng 2023) and coverage of a
reference set (a kNN-radius "recall" in the spirit of Naeem et al. 2020)."""
from __future__ import annotations

import torch

from ._pairwise import as_matrices, as_matrix, knn, pairwise_sq_distances, quantile, require_rows


def _entropy_exp(eigenvalues: torch.Tensor) -> float:
    """exp(−Σ λ log λ) with 0·log 0 = 0; tiny negative eigenvalues are rounding noise."""
    lam = eigenvalues.clamp_min(0.0)
    return float(torch.exp(-torch.xlogy(lam, lam).sum()))


def vendi_score(X, kernel: str = "cosine", *, bandwidth: float | None = None, device=None) -> float:
    """Effective number of distinct rows: exp of the entropy of eig(K/n), k(x, x) = 1.

    1 for identical rows, n for mutually orthogonal ones. "cosine" uses the p×p dual
    matrix when p < n (same non-zero spectrum, O(n·p²)). "rbf" uses
    exp(−|x−y|²/(2σ²)) with σ = ``bandwidth`` or the median pairwise distance; it
    needs the n×n kernel and its O(n³) spectrum, so subsample large sets.
    """
    metric = "vendi_score"
    X = as_matrix(X, metric=metric, device=device)
    n, p = X.shape
    if kernel == "cosine":
        norms = X.norm(dim=1, keepdim=True)
        if bool((norms == 0).any()):
            raise ValueError(f"{metric}: cosine kernel undefined for all-zero rows")
        Z = X / norms
        gram = Z.T @ Z if p < n else Z @ Z.T
        return _entropy_exp(torch.linalg.eigvalsh(gram / n))
    if kernel == "rbf":
        d2 = pairwise_sq_distances(X)
        if bandwidth is None:
            pairs = torch.triu_indices(n, n, offset=1, device=X.device)
            off_diagonal = d2[pairs[0], pairs[1]].sqrt()
            bandwidth = float(off_diagonal.median()) if off_diagonal.numel() else 0.0
            if bandwidth == 0.0:  # at least half the pairs coincide; fall back to the mean spread
                bandwidth = float(off_diagonal.mean()) if off_diagonal.numel() else 0.0
            if bandwidth == 0.0:  # every row identical
                return 1.0
        elif bandwidth <= 0:
            raise ValueError(f"{metric}: bandwidth must be positive, got {bandwidth}")
        gram = torch.exp(-d2 / (2.0 * bandwidth**2))
        return _entropy_exp(torch.linalg.eigvalsh(gram / n))
    raise ValueError(f"{metric}: kernel must be 'cosine' or 'rbf', got {kernel!r}")


def coverage(S, R, k: int = 5, *, device=None) -> float:
    """Fraction of reference rows R whose nearest row of S lies within ρ (Euclidean).

    ρ = median over R of the distance to the k-th nearest other reference row: the
    typical size of a reference neighbourhood, so 1.0 means S reaches all of R's support.
    """
    metric = "coverage"
    S, R = as_matrices(S, R, metric=metric, names="SR", device=device)
    if S.shape[1] != R.shape[1]:
        raise ValueError(f"{metric}: S and R need the same number of features, got {S.shape[1]} and {R.shape[1]}")
    require_rows(metric, R.shape[0], k)
    kth_distance = knn(R, k=k)[0][:, -1]
    radius = quantile(kth_distance, 0.5)
    nearest_in_s = knn(R, S, k=1)[0][:, 0]
    return float((nearest_in_s <= radius).double().mean())
