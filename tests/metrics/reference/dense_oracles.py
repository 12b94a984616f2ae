"""Literal dense numpy transcriptions of REFERENCE.md (n×n matrices, argsort), used to check
the chunked/sparse torch implementations on small inputs. Deliberately naive."""
from __future__ import annotations

import numpy as np


def unit_rows(X):
    X = np.asarray(X, dtype=np.float64)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def knn_mask(K, k):
    """M[i, j] = 1 if j is among the k largest K[i, :] (j != i)."""
    n = K.shape[0]
    S = K.copy()
    np.fill_diagonal(S, -np.inf)
    idx = np.argsort(-S, axis=1, kind="stable")[:, :k]
    M = np.zeros((n, n))
    M[np.arange(n)[:, None], idx] = 1.0
    return M


def hsic_unbiased(A, B):
    n = A.shape[0]
    A = A.copy()
    B = B.copy()
    np.fill_diagonal(A, 0.0)
    np.fill_diagonal(B, 0.0)
    one = np.ones(n)
    return (
        np.trace(A @ B) + (one @ A @ one) * (one @ B @ one) / ((n - 1) * (n - 2)) - 2 * (one @ A @ B @ one) / (n - 2)
    ) / (n * (n - 3))


def mutual_knn(X, Y, k):
    K, L = unit_rows(X) @ unit_rows(X).T, unit_rows(Y) @ unit_rows(Y).T
    return float((knn_mask(K, k) * knn_mask(L, k)).sum(axis=1).mean() / k)


def cknna(X, Y, k, self_terms="own"):
    K, L = unit_rows(X) @ unit_rows(X).T, unit_rows(Y) @ unit_rows(Y).T
    MK, ML = knn_mask(K, k), knn_mask(L, k)
    M = MK * ML
    if self_terms == "mutual":
        den = hsic_unbiased(M * K, M * K) * hsic_unbiased(M * L, M * L)
    else:
        den = hsic_unbiased(MK * K, MK * K) * hsic_unbiased(ML * L, ML * L)
    return float(hsic_unbiased(M * K, M * L) / np.sqrt(den))


def unbiased_cka(X, Y):
    K, L = unit_rows(X) @ unit_rows(X).T, unit_rows(Y) @ unit_rows(Y).T
    return float(hsic_unbiased(K, L) / np.sqrt(hsic_unbiased(K, K) * hsic_unbiased(L, L)))


def vendi_cosine(X):
    K = unit_rows(X) @ unit_rows(X).T
    lam = np.clip(np.linalg.eigvalsh(K / len(K)), 0, None)
    lam = lam[lam > 0]
    return float(np.exp(-(lam * np.log(lam)).sum()))


def coverage(S, R, k):
    dRR = np.linalg.norm(R[:, None] - R[None], axis=2)
    np.fill_diagonal(dRR, np.inf)
    rho = np.median(np.sort(dRR, axis=1)[:, k - 1])
    dRS = np.linalg.norm(R[:, None] - S[None], axis=2)
    return float((dRS.min(axis=1) <= rho).mean())


def information_imbalance_midrank(X, Y, k=1):
    """Δ(X→Y) with mid-ranks for ties in Y (X neighbours from a stable argsort)."""
    n = len(X)
    dX = np.linalg.norm(X[:, None] - X[None], axis=2)
    dY = np.linalg.norm(Y[:, None] - Y[None], axis=2)
    np.fill_diagonal(dX, np.inf)
    np.fill_diagonal(dY, np.inf)
    nn = np.argsort(dX, axis=1, kind="stable")[:, :k]
    ranks = []
    for i in range(n):
        for j in nn[i]:
            closer = (dY[i] < dY[i, j]).sum()
            tied = (dY[i] == dY[i, j]).sum() - 1
            ranks.append(1 + closer + tied / 2)
    return 2 * float(np.mean(ranks)) / n
