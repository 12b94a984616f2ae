"""Lanes: the parts of one batch computed in parallel threads, one core each.

Why: a small MACE model on a few 32-atom cells is hundreds of sub-millisecond ops; splitting
every op over the cores (torch's intra-op threads) pays a synchronisation per op, while
splitting the *batch* into one part per core, each part run with one intra-op thread, keeps
every core busy (for training and for the MD engine's force calls: ``benchmarks/bench_train.py``,
``benchmarks/bench_sampler.py``, docs/performance.md). Torch releases the GIL inside
its ops, so threads suffice. Results come back in part order, so reductions over the parts are
reproducible for a given number of lanes."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np


def count(device: str, threads: int | None) -> int:
    """Lanes for a model with this ``device`` setting and ``threads``: one per thread on CPU
    when a thread count is given, else one (CUDA: the GPU parallelises each op itself)."""
    return threads if device == "cpu" and threads is not None else 1


def split(items, parts: int) -> list[np.ndarray]:
    """``items`` (indices) in at most ``parts`` contiguous, non-empty, near-equal parts."""
    return [p for p in np.array_split(np.asarray(items, dtype=np.int64), min(parts, len(items))) if len(p)]


class Workers:
    """``n`` lanes: the calling thread and ``n - 1`` worker threads. Create it inside the
    caller's ``num_threads(1)`` scope, so that the worker threads' torch ops are serial too.
    A context manager: the worker threads end on exit."""

    def __init__(self, n: int):
        self.n = n
        self._pool = ThreadPoolExecutor(n - 1, thread_name_prefix="cs-lane") if n > 1 else None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def map(self, fn, items: list) -> list:
        """[fn(item) for item in items], the first on the calling thread, in parallel."""
        futures = [self._pool.submit(fn, item) for item in items[1:]] if len(items) > 1 else []
        try:
            first = fn(items[0])
        finally:  # even if this lane failed: the caller's torch scope must outlive every lane
            wait(futures)
        return [first] + [f.result() for f in futures]
