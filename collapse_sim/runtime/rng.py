"""Named random streams: every random choice is keyed by (seed, purpose, ...) so that
results do not depend on execution order, worker placement or resumption."""
from __future__ import annotations

import zlib

import numpy as np


def stream(seed: int, *keys: object) -> np.random.Generator:
    entropy = [int(seed)] + [zlib.crc32(str(key).encode()) for key in keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def child_seed(seed: int, *keys: object) -> int:
    """An int seed (for torch, ASE MD) derived from the same keyed stream."""
    return int(stream(seed, *keys).integers(0, 2**31 - 1))
