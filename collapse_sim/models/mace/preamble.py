"""Imported first by every MACE implementation module: ``mace`` before e3nn, e3nn's import
warnings silenced, and (re-exported from ``collapse_sim.runtime.torch_state``) the context
managers that scope torch's global state to one call (no dtype, thread count or deterministic
mode leaks to the caller)."""
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

# mace.tools.cg prints a notice that the optional cuequivariance kernels are missing when it is
# first imported: once per process, so once per Ray worker, on every run. It says nothing about
# the run; import it here with stdout captured (every MACE code path imports this module first).
with contextlib.redirect_stdout(io.StringIO()):
    import mace.tools.cg  # noqa: F401  isort: skip

# torch's global state scoped to one call: shared with the other torch model kinds
from collapse_sim.runtime.torch_state import (  # noqa: F401
    DTYPES,
    check_threads,
    default_dtype,
    deterministic,
    frozen,
    model_call,
    num_threads,
    torch_device,
)
