"""Main-environment side of the reference oracle: one subprocess for a whole batch of tasks.

Each start of the reference interpreter costs seconds (jax/numba imports), so callers
collect every request first and call ``run_reference`` once.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ENV_VAR = "COLLAPSE_SIM_REFERENCE_PYTHON"
COMPUTE_SCRIPT = Path(__file__).with_name("compute.py")


DEFAULT_VENV_PYTHON = Path(__file__).resolve().parents[3] / ".refenv" / "bin" / "python"


def reference_python() -> str | None:
    """The reference interpreter: $COLLAPSE_SIM_REFERENCE_PYTHON, else the repository's
    ``.refenv`` (made by .ci/run), if present."""
    path = os.environ.get(ENV_VAR) or str(DEFAULT_VENV_PYTHON)
    return path if Path(path).exists() else None


def run_reference(
    python: str, arrays: dict[str, np.ndarray], tasks: list[dict], timeout: float = 600, env: dict | None = None
) -> dict:
    """Run compute.py under ``python`` on ``arrays`` for ``tasks``; returns its output JSON.
    ``env`` adds environment variables (e.g. thread counts for fair timings)."""
    with tempfile.TemporaryDirectory(prefix="collapse_sim_ref_") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "inputs.npz", **{name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()})
        (tmp / "request.json").write_text(json.dumps({"tasks": tasks}))
        proc = subprocess.run(
            [python, str(COMPUTE_SCRIPT), str(tmp / "inputs.npz"), str(tmp / "request.json"), str(tmp / "out.json")],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
        if proc.returncode != 0:
            raise RuntimeError(f"reference computation failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads((tmp / "out.json").read_text())
