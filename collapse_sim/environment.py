"""What software and machine produced a run: recorded by the driver in environment.json,
shown by the report next to the environment that built the report."""
from __future__ import annotations

import os
import platform
import socket
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
