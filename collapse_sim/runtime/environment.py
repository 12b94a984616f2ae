"""What software and machine produced a run (recorded by the driver in the run directory,
shown by the report next to the environment that built the report), and which node runs
the code now (status and fault records)."""
from __future__ import annotations

import os
import platform
import socket
import sys
from importlib import metadata

VERSION_PACKAGES = ("collapse_sim", "mace-torch", "torch", "ase", "ray", "numpy", "matplotlib")


def machine_info() -> dict[str, str]:
    versions = {}
    for pkg in VERSION_PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "not installed"
    return {"platform": platform.platform(), "python": platform.python_version(), "hostname": socket.gethostname(),
            "cpus": str(os.cpu_count()), "processor": platform.machine(), **versions}


def ray_node_id() -> str | None:
    """The Ray node ID inside a Ray worker or driver, else None."""
    ray = sys.modules.get("ray")  # never import Ray just to ask (a --local run has none)
    if ray is None or not ray.is_initialized():
        return None
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker
        return None


def current_node() -> str:
    """Where this code runs: the Ray node ID inside Ray, else the host name."""
    return ray_node_id() or socket.gethostname()
