"""Model × model comparisons of an ecosystem of labs (Edamadaka et al. 2025, arXiv 2512.03750):
the alignment matrix, the information-imbalance matrix, the monoculture index and the
"data or architecture?" separation of groups of models.

Inputs are the labs' embeddings of one shared probe set, (n_probe, p_model) arrays whose rows
are the same structures in the same order (p may differ between models). Every pair reuses the
single-pair metrics of this package; nothing here re-implements them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from .alignment import cknna, mutual_knn
from .dependence import distance_correlation
from .information_imbalance import information_imbalance, information_imbalances

MEASURES = ("cknna", "dcor", "mknn")


def unit_max_rows(Z) -> np.ndarray:
    """The paper's embedding scaling: each structure's vector divided by its largest |element|
    (an all-zero row is left as it is).

    Why it is optional below: a positive factor per row changes nothing that works on L2-normalised
    rows (CKNNA, mutual kNN: exactly invariant), and a single global factor changes nothing at all
    (dCor and information imbalance are invariant to a global scale). Per row it does move
    Euclidean distances, so it matters for dCor and the information imbalance.
    """
    Z = np.asarray(Z, dtype=np.float64)
    peak = np.abs(Z).max(axis=1, keepdims=True)
    return Z / np.where(peak > 0, peak, 1.0)


def _as_list(embeddings: Sequence | Mapping, unit_max: bool) -> list[np.ndarray]:
    arrays = list(embeddings.values()) if isinstance(embeddings, Mapping) else list(embeddings)
    if not arrays:
        raise ValueError("ecosystem metrics need at least one embedding array")
    rows = {np.shape(a)[0] for a in arrays}
    if len(rows) != 1:
        raise ValueError(f"embeddings must hold the same probe structures row by row, got row counts {sorted(rows)}")
    return [unit_max_rows(a) if unit_max else np.asarray(a, dtype=np.float64) for a in arrays]


def alignment_matrix(
    embeddings: Sequence[np.ndarray] | Mapping[str, np.ndarray],
    k: int = 25,
    measure: str = "cknna",
    *,
    unit_max: bool = True,
) -> np.ndarray:
    """(m, m) symmetric alignment of every pair of models, unit diagonal (a model with itself).

    measure: "cknna" (``cknna``, released-code self-terms; the paper's k = 25), "mknn"
    (``mutual_knn``) or "dcor" (``distance_correlation``; ignores k). A Mapping is read in its
    order. unit_max applies the paper's per-structure scaling (``unit_max_rows``): a no-op for
    CKNNA and mutual kNN, which L2-normalise rows; it changes dCor.
    """
    if measure not in MEASURES:
        raise ValueError(f"alignment_matrix: measure must be one of {MEASURES}, got {measure!r}")
    Z = _as_list(embeddings, unit_max)
    pair = {"cknna": lambda X, Y: cknna(X, Y, k=k), "mknn": lambda X, Y: mutual_knn(X, Y, k=k),
            "dcor": distance_correlation}[measure]
    m = len(Z)
    A = np.eye(m)
    for i in range(m):
        for j in range(i + 1, m):
            A[i, j] = A[j, i] = pair(Z[i], Z[j])
    return A


def information_imbalance_pairs(
    embeddings: Sequence[np.ndarray] | Mapping[str, np.ndarray], k: int = 1, *, unit_max: bool = True
) -> np.ndarray:
    """(m, m) matrix D with D[i, j] = Δ(i→j): how badly model i's neighbourhoods predict model j's.

    The plane of the paper plots each pair at (D[i, j], D[j, i]): (0, 0) same information,
    (1, 1) unrelated, off the diagonal one model holds information the other lacks. The diagonal
    is Δ(i→i), the floor (k + 1)/n (ties aside). unit_max: see ``unit_max_rows`` (it moves
    Euclidean neighbourhoods, so it changes Δ).
    """
    Z = _as_list(embeddings, unit_max)
    m = len(Z)
    D = np.empty((m, m))
    for i in range(m):
        D[i, i] = information_imbalance(Z[i], Z[i], k=k)
        for j in range(i + 1, m):
            D[i, j], D[j, i] = information_imbalances(Z[i], Z[j], k=k)
    return D


def _off_diagonal(A: np.ndarray) -> np.ndarray:
    return A[~np.eye(len(A), dtype=bool)]


def monoculture_index(cknna_matrix) -> float:
    """Mean off-diagonal CKNNA: 1 = every lab has the same representation (a monoculture),
    ≈ 0 = labs represent the probes independently. NaN for fewer than two models."""
    A = np.asarray(cknna_matrix, dtype=np.float64)
    return float(_off_diagonal(A).mean()) if len(A) > 1 else math.nan


def group_separation(cknna_matrix, labels: Sequence, *, distances=None, alpha: float = 0.5) -> dict[str, float]:
    """How strongly a grouping of the models (by data source, or by architecture) shows in their
    representations; compute it once per grouping, the larger separation says which one governs.

    - "similarity_gap": mean CKNNA within groups minus mean CKNNA between groups (off-diagonal
      pairs only). > 0: models of a group resemble each other more than outsiders; ≈ 0 or < 0:
      the grouping explains nothing.
    - "silhouette": silhouette score (scikit-learn, metric="precomputed") of the labels on the
      tree distances (``tree_distances(cknna_matrix, alpha)`` unless ``distances`` is given), in
      [−1, 1]: near 1 = the groups are tight, separate branches of the tree; ≈ 0 = mixed.
    NaN where undefined (no within-group or no between-group pair; silhouette needs
    2 ≤ groups ≤ models − 1).
    """
    from sklearn.metrics import silhouette_score  # imported here: sklearn is slow to import

    from .tree import tree_distances

    A = np.asarray(cknna_matrix, dtype=np.float64)
    labels = np.asarray(list(labels), dtype=object)
    m = len(A)
    if labels.shape != (m,):
        raise ValueError(f"group_separation: {len(labels)} labels for {m} models")
    same = (labels[:, None] == labels[None, :])[~np.eye(m, dtype=bool)]
    off = _off_diagonal(A)
    gap = float(off[same].mean() - off[~same].mean()) if same.any() and (~same).any() else math.nan
    D = tree_distances(A, alpha=alpha) if distances is None else np.asarray(distances, dtype=np.float64)
    n_groups = len(set(labels.tolist()))
    silhouette = (float(silhouette_score(D, labels.astype(str), metric="precomputed"))
                  if 2 <= n_groups <= m - 1 else math.nan)
    return {"similarity_gap": gap, "silhouette": silhouette}
