"""Torch's process-wide state scoped to one call, shared by the torch model kinds (MACE, ANI):
a fit or predict sets the default dtype, thread count and deterministic mode it needs and
leaves the caller's as it found them. Also the parameter digest behind ``Model.fingerprint``.
Imports torch: import this module only where torch is used (models, the metric suite)."""
from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

import torch

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def torch_device(name: str) -> torch.device:
    """The torch device of a model's ``device`` setting; RuntimeError if CUDA is asked for and absent."""
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
def compute_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads and the BLAS/OpenMP pools numpy uses, ``threads`` each for the
    duration (None: as they are). Float reductions split over threads round differently, so a
    step that fixes its threads gives the same last bits in a Ray task (OMP_NUM_THREADS=1) and
    in a ``--local`` run (every core)."""
    if threads is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    with num_threads(threads), threadpool_limits(limits=threads):
        yield


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """torch deterministic algorithms for the duration, previous mode restored afterwards.

    Needed for bit-reproducibility with more than one thread: the backward of gathers
    (``index_put_``/``index_add_`` with accumulate, i.e. every force computation) uses parallel
    atomic adds on CPU unless this mode is on. ``warn_only`` so that ops without a deterministic
    kernel (CUDA) still run.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@contextlib.contextmanager
def model_call(dtype: torch.dtype, threads: int | None) -> Iterator[None]:
    """One model call's torch state (fit, predict, embed, a batched force call): ``dtype`` as the
    default, ``threads`` intra-op threads and deterministic kernels, all restored afterwards."""
    with default_dtype(dtype), num_threads(threads), deterministic():
        yield


def check_threads(threads: int | None) -> int | None:
    """``threads`` as a model kind's constructor takes it: None (as they are) or positive."""
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be positive, got {threads}")
    return threads


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


def state_dict_fingerprint(module: torch.nn.Module) -> str:
    """'sha256:' + 16 hex digits of the state dict (names, dtypes, shapes, bytes, in name order).

    Identical for identical weights whatever process trained or saved them (file bytes are not)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]
