"""Geometry helpers for invariance tests."""
from __future__ import annotations

import numpy as np


def random_rotation(seed: int) -> np.ndarray:
    """A proper rotation (det +1), uniformly distributed (QR of a Gaussian matrix, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q
