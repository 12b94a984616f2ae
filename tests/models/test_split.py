"""The validation split shared by the trainable model kinds (MACE, ANI)."""
from __future__ import annotations

import numpy as np
import pytest

from collapse_sim.models.split import train_valid_split


@pytest.mark.parametrize("n, fraction, held_out", [(10, 0.1, 1), (30, 0.1, 3), (5, 0.1, 1), (2, 0.9, 1),
                                                   (10, 0.0, 0), (1, 0.5, 0), (0, 0.1, 0)])
def test_how_many_are_held_out(n, fraction, held_out):
    train, valid = train_valid_split(n, fraction, seed=3)
    assert len(valid) == held_out and len(train) == n - held_out
    assert sorted(np.concatenate([train, valid]).tolist()) == list(range(n))


def test_the_split_is_mace_s_shuffle_of_the_seed():
    """mace's random_train_valid_split shuffles range(n) with default_rng(seed) and holds out the tail."""
    indices = list(range(20))
    np.random.default_rng(7).shuffle(indices)
    train, valid = train_valid_split(20, 0.25, seed=7)
    assert train.tolist() == indices[:15] and valid.tolist() == indices[15:]
