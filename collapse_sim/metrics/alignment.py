"""Representation alignment of Huh et al. 2024 (mutual kNN, CKNNA, unbiased linear CKA).

Rows are optionally clipped at a quantile of |value| and L2-normalised; kernels are
inner products of those rows. CKNNA's masked kernels are sparse (≤ k entries per
row), so every HSIC term is computed from the kNN lists in O(n·k) memory; CKA's
dense terms come from the feature matrices, never from an n×n kernel.
"""
from __future__ import annotations

import torch

from ._pairwise import as_paired, inner_knn, quantile, require_positive_int, require_rows


def _preprocess(Z: torch.Tensor, clip_quantile: float | None) -> torch.Tensor:
    """Clip at the global quantile of |value| (the reference code's outlier guard), then unit rows."""
    if clip_quantile is not None:
        if not 0.0 < clip_quantile <= 1.0:
            raise ValueError(f"clip_quantile must lie in (0, 1], got {clip_quantile}")
        bound = quantile(Z.abs().reshape(-1), clip_quantile)
        Z = Z.clamp(-bound, bound)
    return torch.nn.functional.normalize(Z, dim=1)


#: CKNNA needs at least this many rows per neighbour: with k near n its self-terms shrink faster
#: than the cross term and the score leaves [-1, 1], so values at different n do not compare
CKNNA_ROWS_PER_K = 4


def _neighbours(X, Y, k, clip_quantile, metric, device, *, for_cknna: bool = False):
    """Cosine kNN lists of both spaces; shared by mutual_knn, cknna and alignment_metrics.
    ``for_cknna``: refuse fewer than ``CKNNA_ROWS_PER_K`` x k rows."""
    require_positive_int(metric, "k", k)
    X, Y = as_paired(X, Y, metric=metric, device=device)
    n = X.shape[0]
    require_rows(metric, n, k, minimum=CKNNA_ROWS_PER_K * k if for_cknna else 4)
    sims_x, idx_x = inner_knn(_preprocess(X, clip_quantile), k=k)
    sims_y, idx_y = inner_knn(_preprocess(Y, clip_quantile), k=k)
    return n, sims_x, idx_x, sims_y, idx_y


def _shared(idx_x: torch.Tensor, idx_y: torch.Tensor) -> torch.Tensor:
    """(n, k, k) boolean: idx_x[i, a] == idx_y[i, b]."""
    return idx_x.unsqueeze(2) == idx_y.unsqueeze(1)


def _mutual_knn(n, k, idx_x, idx_y) -> float:
    return float(_shared(idx_x, idx_y).sum()) / (n * k)


def _hsic_unbiased(n: int, trace_ab, sum_a, sum_b, cross):
    """Song et al. 2012 unbiased HSIC from its four terms (zero-diagonal A, B):
    tr(AB), 1ᵀA1, 1ᵀB1 and 1ᵀAB1."""
    return (trace_ab + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * cross / (n - 2)) / (n * (n - 3))


def _sparse_hsic(n: int, rows, cols, a, b):
    """HSIC_u of two matrices sharing the sparsity pattern (rows, cols), values a and b."""
    keys = rows * n + cols
    sorted_keys, order = keys.sort()
    transposed = cols * n + rows
    pos = torch.searchsorted(sorted_keys, transposed).clamp_max_(keys.numel() - 1)
    present = sorted_keys[pos] == transposed
    b_transposed = torch.where(present, b[order[pos]], torch.zeros_like(b))
    trace_ab = torch.dot(a, b_transposed)  # Σ_ij A_ij B_ji
    col_sums_a = a.new_zeros(n).index_add_(0, cols, a)
    row_sums_b = b.new_zeros(n).index_add_(0, rows, b)
    return _hsic_unbiased(n, trace_ab, a.sum(), b.sum(), torch.dot(col_sums_a, row_sums_b))


def _cknna(n, sims_x, idx_x, sims_y, idx_y, self_terms: str) -> float:
    i, a, b = _shared(idx_x, idx_y).nonzero(as_tuple=True)
    rows, cols = i, idx_x[i, a]
    k_vals, l_vals = sims_x[i, a], sims_y[i, b]
    cross = _sparse_hsic(n, rows, cols, k_vals, l_vals)
    if self_terms == "own":  # released platonic-rep code: each self-term masked by its own kNN
        own_rows = torch.arange(n, device=idx_x.device).repeat_interleave(idx_x.shape[1])
        self_x = _sparse_hsic(n, own_rows, idx_x.reshape(-1), sims_x.reshape(-1), sims_x.reshape(-1))
        self_y = _sparse_hsic(n, own_rows, idx_y.reshape(-1), sims_y.reshape(-1), sims_y.reshape(-1))
    elif self_terms == "mutual":  # REFERENCE.md literally: one mask M for all three terms
        self_x = _sparse_hsic(n, rows, cols, k_vals, k_vals)
        self_y = _sparse_hsic(n, rows, cols, l_vals, l_vals)
    else:
        raise ValueError(f"cknna: self_terms must be 'own' or 'mutual', got {self_terms!r}")
    denominator = self_x * self_y
    if float(denominator) <= 0.0:  # no shared neighbourhood structure to compare
        return 0.0
    return float(cross / denominator.sqrt())


def mutual_knn(X, Y, k: int = 10, *, clip_quantile: float | None = None, device=None) -> float:
    """Mean fraction of each row's k cosine neighbours shared by X and Y (1 = identical neighbourhoods)."""
    n, _, idx_x, _, idx_y = _neighbours(X, Y, k, clip_quantile, "mutual_knn", device)
    return _mutual_knn(n, k, idx_x, idx_y)


def cknna(
    X, Y, k: int = 10, *, clip_quantile: float | None = None, self_terms: str = "own", device=None
) -> float:
    """CKNNA: unbiased HSIC of the linear kernels restricted to mutual kNN pairs, normalised by self-terms.

    self_terms="own" (default) is the released platonic-rep code of Huh et al. that
    produced the published numbers: each self-term HSIC_u(M_X∘K, M_X∘K) is masked by
    that space's own kNN graph, so shrinking neighbourhood overlap lowers the score.
    self_terms="mutual" is REFERENCE.md's literal formula (mask M in all three terms);
    it is a cosine between two matrices sharing M's sparsity pattern and sits near 1 even
    for independent representations (0.98 at n=300, k=10), so it does not measure alignment.
    Returns 0.0 when no mutual pair carries signal; refuses fewer than 4 k rows.
    """
    return _cknna(*_neighbours(X, Y, k, clip_quantile, "cknna", device, for_cknna=True), self_terms=self_terms)


def unbiased_cka(X, Y, *, clip_quantile: float | None = None, device=None) -> float:
    """Unbiased linear CKA: CKNNA with the mask all ones off the diagonal (same HSIC_u, same preprocessing).

    The dense HSIC terms are evaluated from the features (O(n·p·q)), not from n×n kernels.
    """
    X, Y = as_paired(X, Y, metric="unbiased_cka", device=device)
    n = X.shape[0]
    require_rows("unbiased_cka", n, minimum=4)
    X, Y = _preprocess(X, clip_quantile), _preprocess(Y, clip_quantile)

    def terms(A, B):
        diag_a, diag_b = (A * A).sum(1), (B * B).sum(1)  # K_ii, L_ii
        trace = (A.T @ B).square().sum() - torch.dot(diag_a, diag_b)  # Σ_{i≠j} K_ij L_ij
        row_a = A @ A.sum(0) - diag_a  # K̃1
        row_b = B @ B.sum(0) - diag_b
        return _hsic_unbiased(n, trace, row_a.sum(), row_b.sum(), torch.dot(row_a, row_b))

    denominator = terms(X, X) * terms(Y, Y)
    if float(denominator) <= 0.0:
        return 0.0
    return float(terms(X, Y) / denominator.sqrt())
