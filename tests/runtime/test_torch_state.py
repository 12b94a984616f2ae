"""Process-wide compute state scoped to a call (``runtime.torch_state``)."""
from __future__ import annotations

import numpy as np
import torch
from threadpoolctl import threadpool_info

from collapse_sim.runtime.torch_state import compute_threads


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info()]


def test_compute_threads_fixes_torch_and_blas_threads_then_restores_them():
    np.ones((4, 4)) @ np.ones((4, 4))  # numpy's BLAS loaded
    torch_before, blas_before = torch.get_num_threads(), _blas_threads()
    with compute_threads(1):
        assert torch.get_num_threads() == 1
        assert set(_blas_threads()) == {1}
    assert torch.get_num_threads() == torch_before and _blas_threads() == blas_before
    with compute_threads(None):  # no threads given: left as they are
        assert torch.get_num_threads() == torch_before and _blas_threads() == blas_before
