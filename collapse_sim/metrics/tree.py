"""The "evolutionary tree" of models of Edamadaka et al. 2025 (arXiv 2512.03750): Jensen–Shannon
distances between the models' similarity profiles, joined by Neighbor Joining and written as Newick.

Neighbor Joining and Newick I/O are Biopython's (``Bio.Phylo``), a maintained implementation.
"""
from __future__ import annotations

import io
import re
from collections.abc import Sequence

import numpy as np
from Bio import Phylo
from Bio.Phylo.BaseTree import Tree
from Bio.Phylo.TreeConstruction import DistanceMatrix, DistanceTreeConstructor
from scipy.spatial.distance import jensenshannon

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


def tree_distances(similarity, alpha: float = 0.5, eps: float = 1e-6) -> np.ndarray:
    """(m, m) distances D_ij = α·√JSD(R_i, R_j) + (1 − α)·√JSD(K_i, K_j), JSD in bits, so D ∈ [0, 1].

    R_i (row i) and K_i (column i) of the model × model similarity (CKNNA) matrix, clipped at 0
    (CKNNA of unrelated models can dip below 0; a profile must be non-negative), plus ``eps``,
    normalised to sum 1. ``scipy.spatial.distance.jensenshannon(base=2)`` returns √JSD.
    The diagonal (self-similarity 1) stays in the profiles, as in the paper's matrices: every
    profile then lives on the same m models, and the pair's own similarity counts (two models
    that are unlike each other differ at entries i and j). α is not stated in the paper; 0.5
    is our choice. For a symmetric matrix (CKNNA is) R_i = K_i and α has no effect.
    """
    S = np.asarray(similarity, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1]:
        raise ValueError(f"tree_distances: need a square similarity matrix, got shape {S.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"tree_distances: alpha must lie in [0, 1], got {alpha}")
    P = np.clip(S, 0.0, None) + eps
    rows = P / P.sum(axis=1, keepdims=True)
    cols = (P / P.sum(axis=0, keepdims=True)).T
    m = len(S)
    D = np.zeros((m, m))
    for i in range(m):
        for j in range(i + 1, m):
            D[i, j] = D[j, i] = (alpha * jensenshannon(rows[i], rows[j], base=2)
                                 + (1.0 - alpha) * jensenshannon(cols[i], cols[j], base=2))
    return D


def newick_name(name) -> str:
    """A leaf name any Newick reader takes unquoted: characters outside [A-Za-z0-9_.+-] become "_"."""
    return _UNSAFE.sub("_", str(name)) or "_"


def neighbor_joining(distances, names: Sequence[str]) -> str:
    """Newick text of the Neighbor-Joining tree (Biopython) of a symmetric distance matrix.

    Leaves are ``newick_name(name)`` (they must stay distinct); inner nodes are unnamed.
    NJ trees are unrooted, so the tree is rooted at its midpoint (a readable drawing; groups
    separated by a long branch come out as clades). NJ can give slightly negative branch
    lengths when distances are not additive; they are set to 0.
    """
    D = np.asarray(distances, dtype=np.float64)
    leaves = [newick_name(n) for n in names]
    if D.shape != (len(leaves), len(leaves)):
        raise ValueError(f"neighbor_joining: {len(leaves)} names for a distance matrix of shape {D.shape}")
    if len(set(leaves)) != len(leaves):
        raise ValueError(f"neighbor_joining: names are not distinct once made Newick-safe: {leaves}")
    if len(leaves) < 3:
        raise ValueError("neighbor_joining: needs at least 3 models")
    D = (D + D.T) / 2.0
    lower = [[float(D[i, j]) for j in range(i)] + [0.0] for i in range(len(leaves))]
    tree = DistanceTreeConstructor().nj(DistanceMatrix(leaves, lower))
    for clade in tree.find_clades():
        if not clade.is_terminal():
            clade.name = None
        if clade.branch_length is not None and clade.branch_length < 0:
            clade.branch_length = 0.0
    if tree.total_branch_length() > 0:  # Biopython's midpoint rooting fails on an all-zero tree
        tree.root_at_midpoint()
    out = io.StringIO()
    Phylo.write(tree, out, "newick")
    return out.getvalue().strip()


def parse_newick(text: str) -> Tree:
    """The ``Bio.Phylo`` tree of Newick text (for tests, drawing and clade queries)."""
    return Phylo.read(io.StringIO(text), "newick")
