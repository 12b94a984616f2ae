"""A training budget in optimiser steps instead of passes over the data.

Why: with a fixed number of epochs the number of optimiser steps grows with the training set,
so a policy whose set grows (accumulate) also gets more compute, and one whose set is smaller
than generation 0's (replace with a smaller synthetic pool) gets less. Small models trained
for a few epochs are limited by those steps, not by their data (docs/results/study-cu.md), so
a fixed step budget is what compares data policies at equal compute.
"""
from __future__ import annotations

import math


def passes(epochs: int, steps: int | None, batches_per_pass: int) -> int:
    """Passes over the training split: ``epochs``, or with ``steps`` the fewest whole passes
    that make at least ``steps`` optimiser steps (``batches_per_pass`` steps each)."""
    if steps is None:
        return epochs
    return math.ceil(steps / max(batches_per_pass, 1))
