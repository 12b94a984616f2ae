"""Ray start-up: the embedded local instance or a cluster, always with Ray's token
authentication, and on loopback only wherever Ray allows it (see README, Security)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from collapse_sim.runtime.executor import PASSIVE_OPENMP

#: Ray's own switch for its single-machine mode (its default on macOS and Windows): every
#: service binds to 127.0.0.1 and a loopback address is used as given. In its cluster mode
#: (the Linux default) Ray replaces 127.0.0.1 and localhost by the machine's routable address
#: and binds its services to all interfaces.
RAY_SINGLE_MACHINE = ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
_LOOPBACK_HOSTS = ("127.", "localhost", "::1", "[::1]")


def is_loopback(address: str | None) -> bool:
    """True for the embedded Ray (no address, or 'local') and for a host:port on loopback."""
    if address in (None, "", "local"):
        return True
    host = address.rsplit(":", 1)[0] if address.count(":") == 1 or address.startswith("[") else address
    return host.startswith(_LOOPBACK_HOSTS)


def _single_machine_mode() -> None:
    """Keep Ray's traffic on loopback: node IP 127.0.0.1, nothing listening on other interfaces.

    Ray reads the switch once, when ``ray._private.ray_constants`` is imported; a process that
    imported Ray before this call gets the cached value updated as well."""
    name, value = RAY_SINGLE_MACHINE
    os.environ[name] = value
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def ensure_auth_token() -> str:
    """Token authentication on, with a token only this user can read; returns where it comes from.

    Ray (>= 2.52) checks a shared-secret token on every RPC when ``RAY_AUTH_MODE=token``. Its
    token comes from ``RAY_AUTH_TOKEN``, else the file ``RAY_AUTH_TOKEN_PATH``, else
    ``~/.ray/auth_token``. A new local ``ray.init`` would create that default file itself, but
    world-readable (mode 0644): we create it first, with mode 0600."""
    mode = os.environ.setdefault("RAY_AUTH_MODE", "token")
    if mode.lower() != "token":
        print(f"collapse-sim: warning: RAY_AUTH_MODE={mode}: Ray's token authentication is off; anyone who can "
              "reach this machine's Ray ports can run code here", file=sys.stderr)
        return "disabled"
    if os.environ.get("RAY_AUTH_TOKEN"):
        return "RAY_AUTH_TOKEN"
    if os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return os.environ["RAY_AUTH_TOKEN_PATH"]
    path = Path.home() / ".ray" / "auth_token"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return str(path)
    import secrets

    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    return str(path)


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join ``address`` or start an embedded local Ray sized to this machine.

    Always with Ray's token authentication (``ensure_auth_token``). The embedded Ray and a
    loopback ``address`` run in Ray's single-machine mode, so every Ray port listens on
    127.0.0.1 only and ``127.0.0.1:PORT`` is connected to as given; any other address is
    passed to Ray unchanged."""
    ensure_auth_token()
    if is_loopback(address):
        _single_machine_mode()
    import ray

    if ray.is_initialized():  # one Ray per process: a later run in a notebook uses the first one
        if address not in (None, "local") or num_cpus is not None:
            import warnings

            warnings.warn("Ray is already running in this process; this run uses it (the address and num_cpus "
                          "given are not applied; restart the Python process to change them)", stacklevel=2)
        return
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    runtime_env = {"env_vars": {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", PASSIVE_OPENMP)}}
    if address and address != "local":
        ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
    else:
        # address="local": always a new embedded instance, never the latest `ray start` cluster
        # that ray.init() would otherwise join (found through /tmp/ray/ray_current_cluster)
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=True,
                 runtime_env=runtime_env, logging_level="WARNING")  # no "Started a local Ray instance" line
