"""The validation split every trainable model kind uses: one rule, so the same seed and data
hold out the same structures whichever kind is trained."""
from __future__ import annotations

import numpy as np


def train_valid_split(n: int, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (training, validation) of ``n`` structures: a permutation by
    ``np.random.default_rng(seed)`` (as mace's ``random_train_valid_split``), its last
    ``int(valid_fraction * n)`` held out, at least one and never all; none when
    ``valid_fraction`` is 0 or ``n < 2``."""
    perm = np.random.default_rng(seed).permutation(n)
    n_valid = 0 if (valid_fraction == 0.0 or n < 2) else min(max(int(valid_fraction * n), 1), n - 1)
    return perm[: n - n_valid], perm[n - n_valid:]
