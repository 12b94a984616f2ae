"""Shared plumbing for every metric: input conversion/validation and row-chunked
pairwise kernels (kNN, neighbour ranks, distance moments).

Every n×n quantity is produced one block of rows at a time (``block × n``
entries in flight), so memory stays O(n·k) beyond the block; all arithmetic is
float64 on the device of the input tensor.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

#: entries of one ``rows × columns`` block in flight (8 MiB in float64: stays in cache
#: through the few elementwise steps that follow each GEMM)
BLOCK_ELEMENTS = 1 << 20


# ----------------------------------------------------------------------------- inputs
def _target_device(arrays, device) -> torch.device:
    """Explicit ``device`` wins; otherwise the first tensor input's device; else CPU."""
    if device is not None:
        return torch.device(device)
    for a in arrays:
        if isinstance(a, torch.Tensor):
            return a.device
    return torch.device("cpu")


def _to_matrix(x, metric: str, name: str, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        t = x.detach().to(device=device, dtype=torch.float64)
    else:
        t = torch.as_tensor(np.asarray(x, dtype=np.float64), device=device)
    if t.ndim == 1:  # n scalar samples
        t = t.reshape(-1, 1)
    if t.ndim != 2:
        raise ValueError(f"{metric}: {name} must be 2-D (rows = structures), got shape {tuple(t.shape)}")
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"{metric}: {name} is empty (shape {tuple(t.shape)})")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{metric}: {name} contains NaN or inf")
    return t


def as_matrices(*arrays, metric: str, names: str = "XY", device=None) -> list[torch.Tensor]:
    """numpy/torch inputs -> float64 2-D tensors on one device (the inputs' unless ``device``)."""
    target = _target_device(arrays, device)
    return [_to_matrix(a, metric, names[i] if i < len(names) else f"input{i}", target) for i, a in enumerate(arrays)]


def as_matrix(x, *, metric: str, name: str = "X", device=None) -> torch.Tensor:
    return as_matrices(x, metric=metric, names=name, device=device)[0]


def as_paired(X, Y, *, metric: str, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two representations of the same structures: row counts must match."""
    X, Y = as_matrices(X, Y, metric=metric, device=device)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"{metric}: X and Y must hold the same structures row by row, got {X.shape[0]} and {Y.shape[0]} rows"
        )
    return X, Y


def require_rows(metric: str, n: int, k: int | None = None, minimum: int = 0) -> None:
    """Neighbour statistics need k neighbours plus the point itself plus one spare."""
    need = max(minimum, 0 if k is None else k + 2)
    if n < need:
        for_k = "" if k is None else f" for k={k}"
        raise ValueError(f"{metric}: needs at least {need} rows{for_k}, got n={n}")


def require_positive_int(metric: str, name: str, value: int) -> None:
    if int(value) != value or value < 1:
        raise ValueError(f"{metric}: {name} must be a positive integer, got {value!r}")


# ----------------------------------------------------------------------------- blocks
def row_blocks(n_rows: int, n_cols: int, per_row: int = 1) -> Iterator[tuple[int, int]]:
    """(start, stop) row ranges so that ``rows × n_cols × per_row`` stays near BLOCK_ELEMENTS."""
    size = max(1, BLOCK_ELEMENTS // max(1, n_cols * per_row))
    for start in range(0, n_rows, size):
        yield start, min(n_rows, start + size)


def _drop_self(block: torch.Tensor, start: int, value: float) -> torch.Tensor:
    """Overwrite entries (i, start + i) of a row block of a self-comparison."""
    rows = torch.arange(block.shape[0], device=block.device)
    block[rows, rows + start] = value
    return block


class Points:
    """A point set, centred (the GEMM expansion loses accuracy far from the origin) and augmented
    so that one GEMM yields squared distances: [z, |z|², 1]·[−2z', 1, |z'|²] = |z − z'|²."""

    def __init__(self, Z: torch.Tensor, shift: torch.Tensor | None = None):
        self.z = Z - (Z.mean(dim=0) if shift is None else shift)
        self.sq = (self.z * self.z).sum(dim=1, keepdim=True)
        one = torch.ones_like(self.sq)
        self.left = torch.cat([self.z, self.sq, one], dim=1)
        self.right = torch.cat([-2.0 * self.z, one, self.sq], dim=1)

    def __len__(self) -> int:
        return self.z.shape[0]

    def sq_distances(self, start: int, stop: int, ref: Points, col_start: int = 0) -> torch.Tensor:
        """|z_i − r_j|² for rows start:stop against ref rows col_start:, clamped at 0."""
        return torch.mm(self.left[start:stop], ref.right[col_start:].T).clamp_min_(0.0)

    def tie_tolerance(self, start: int, stop: int) -> torch.Tensor:
        """Rounding bound of the GEMM expansion per row: squared distances closer than this tie."""
        return 64 * torch.finfo(self.z.dtype).eps * (self.sq[start:stop, 0] + self.sq.max())


# ----------------------------------------------------------------------------- kNN & ranks
def _exact_neighbours(query: Points, start: int, stop: int, ref: Points, idx: torch.Tensor):
    """Candidates' distances recomputed from coordinate differences, re-sorted ascending:
    duplicates sit at exactly 0 and near-ties are ordered exactly."""
    dist = (ref.z[idx] - query.z[start:stop].unsqueeze(1)).norm(dim=2)
    dist, order = dist.sort(dim=1, stable=True)
    return dist, idx.gather(1, order)


def scan(Z: torch.Tensor, *, k: int | None = None, rank_of: torch.Tensor | None = None):
    """One blocked pass over Z's Euclidean self-distances giving, as requested,
    the k nearest neighbours (distances ascending, indices; self excluded) and the
    ranks of the points ``rank_of[i, a]`` among i's neighbours (1 = nearest).

    Ranks are counts of closer points, never an n×n argsort. Ties (within the GEMM
    rounding bound) get the mid-rank, the expected rank under random tie-breaking,
    so the result is deterministic.
    """
    points = Points(Z)
    n = len(points)
    per_row = 1 if k is None else max(1, (k * Z.shape[1]) // n)  # room for the (rows, k, p) refinement
    dists, idxs, ranks = [], [], []
    for start, stop in row_blocks(n, n, per_row):
        d2 = _drop_self(points.sq_distances(start, stop, points), start, float("inf"))
        if k is not None:
            _, idx = d2.topk(k, dim=1, largest=False, sorted=False)
            dist, idx = _exact_neighbours(points, start, stop, points, idx)
            dists.append(dist)
            idxs.append(idx)
        if rank_of is not None:
            target = d2.gather(1, rank_of[start:stop])
            tol = points.tie_tolerance(start, stop).unsqueeze(1)
            block_ranks = torch.empty_like(target)
            for a in range(target.shape[1]):
                t = target[:, a : a + 1]
                closer = (d2 < t - tol).sum(dim=1)
                tied_others = (d2 <= t + tol).sum(dim=1) - closer - 1
                block_ranks[:, a] = 1.0 + closer + 0.5 * tied_others
            ranks.append(block_ranks)
    return (
        (torch.cat(dists), torch.cat(idxs)) if k is not None else None,
        torch.cat(ranks) if rank_of is not None else None,
    )


def knn(query: torch.Tensor, ref: torch.Tensor | None = None, *, k: int):
    """k nearest rows of ``ref`` (default: ``query`` itself, self excluded), Euclidean:
    (distances ascending, indices)."""
    if ref is None:
        return scan(query, k=k)[0]
    ref_points = Points(ref)
    query_points = Points(query, shift=ref.mean(dim=0))
    per_row = max(1, (k * ref.shape[1]) // len(ref_points))
    dists, idxs = [], []
    for start, stop in row_blocks(len(query_points), len(ref_points), per_row):
        _, idx = query_points.sq_distances(start, stop, ref_points).topk(k, dim=1, largest=False, sorted=False)
        dist, idx = _exact_neighbours(query_points, start, stop, ref_points, idx)
        dists.append(dist)
        idxs.append(idx)
    return torch.cat(dists), torch.cat(idxs)


def inner_knn(Z: torch.Tensor, *, k: int):
    """k rows of largest inner product with each row (self excluded): (values descending, indices).
    Cosine similarity when rows are L2-normalised."""
    values, indices = [], []
    for start, stop in row_blocks(Z.shape[0], Z.shape[0]):
        scores = _drop_self(Z[start:stop] @ Z.T, start, float("-inf"))
        vals, idx = scores.topk(k, dim=1, largest=True, sorted=True)
        values.append(vals)
        indices.append(idx)
    return torch.cat(values), torch.cat(indices)


# ----------------------------------------------------------------------------- distances
def distance_moments(X: torch.Tensor, Y: torch.Tensor):
    """Sufficient statistics of the two Euclidean distance matrices a, b for (U-)centred dCov:
    (Σ a∘b, Σ a∘a, Σ b∘b, row sums of a, row sums of b).

    Both matrices are symmetric, so only the upper triangle is visited: each row block
    against itself and the columns after it, off-diagonal tiles counted twice.
    """
    px, py = Points(X), Points(Y)
    n = len(px)
    s_ab = s_aa = s_bb = X.new_zeros(())
    rows_a, rows_b = X.new_zeros(n), X.new_zeros(n)
    for start, stop in row_blocks(n, n):
        a = _drop_self(px.sq_distances(start, stop, px, col_start=start).sqrt_(), 0, 0.0)
        b = _drop_self(py.sq_distances(start, stop, py, col_start=start).sqrt_(), 0, 0.0)
        weight = torch.full_like(a[0], 2.0)  # tiles right of the diagonal block stand for their mirror
        weight[: stop - start] = 1.0
        a_weighted, b_weighted = (a * weight).view(-1), (b * weight).view(-1)
        s_ab = s_ab + torch.dot(a_weighted, b.view(-1))
        s_aa = s_aa + torch.dot(a_weighted, a.view(-1))
        s_bb = s_bb + torch.dot(b_weighted, b.view(-1))
        rows_a[start:stop] += a.sum(dim=1)
        rows_b[start:stop] += b.sum(dim=1)
        rows_a[stop:] += a[:, stop - start :].sum(dim=0)
        rows_b[stop:] += b[:, stop - start :].sum(dim=0)
    return s_ab, s_aa, s_bb, rows_a, rows_b


def pairwise_sq_distances(X: torch.Tensor) -> torch.Tensor:
    """Full n×n squared Euclidean distances (only for kernels that need the whole matrix)."""
    points = Points(X)
    return _drop_self(points.sq_distances(0, len(points), points), 0, 0.0)


def quantile(values: torch.Tensor, q: float) -> torch.Tensor:
    """Linear-interpolation quantile (numpy's default) of a 1-D tensor of any length.

    ``torch.quantile`` refuses inputs above 2**24 elements; kthvalue does not.
    """
    m = values.numel()
    pos = q * (m - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, m - 1)
    v_lo = values.kthvalue(lo + 1).values
    v_hi = values.kthvalue(hi + 1).values if hi != lo else v_lo
    return v_lo + (pos - lo) * (v_hi - v_lo)
