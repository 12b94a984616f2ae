"""Imported first by every MACE implementation module: ``mace`` before e3nn, e3nn's import
warnings silenced, and context managers that scope torch's global state to one call (no
dtype, thread count or deterministic mode leaks to the caller)."""
from __future__ import annotations

import warnings

# e3nn's TorchScript code generation and its constants loader warn on every import/model
# build; they are harmless and would flood every Ray worker's log.
warnings.filterwarnings("ignore", message="The TorchScript type system")
warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")

# ``import mace`` must come before anything imports e3nn: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.
import mace  # noqa: F401  isort: skip

import contextlib
import io
from typing import Iterator

# mace.tools.cg prints a notice that the optional cuequivariance kernels are missing when it is
# first imported: once per process, so once per Ray worker, on every run. It says nothing about
# the run; import it here with stdout captured (every MACE code path imports this module first).
with contextlib.redirect_stdout(io.StringIO()):
    import mace.tools.cg  # noqa: F401  isort: skip

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_device(name: str) -> torch.device:
    """The torch device of ``MACESettings.device``; RuntimeError if CUDA is asked for and absent."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("settings.device='cuda' but CUDA is not available")
    return torch.device(name)


@contextlib.contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def num_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """torch deterministic algorithms for the duration, previous mode restored afterwards.

    Needed for bit-reproducibility with more than one thread: the backward of MACE's gathers
    (``index_put_`` with accumulate, i.e. the force computation) uses parallel atomic adds on CPU
    unless this mode is on. ``warn_only`` so that ops without a deterministic kernel (CUDA) still run.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@contextlib.contextmanager
def frozen(model: torch.nn.Module) -> Iterator[None]:
    """Parameters without requires_grad (forces still come from autograd on positions)."""
    backup = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in backup:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in backup:
            p.requires_grad_(flag)
