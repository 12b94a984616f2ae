"""Python environments made on demand from pip requirements: for code that cannot share this
process's environment (a calculator whose dependencies conflict with mace's, say).

An environment is a plain ``venv`` built with its own ``pip`` from the package index that pip
is configured to use. It lives in a cache directory (``$COLLAPSE_SIM_ENVS``, else
``$XDG_CACHE_HOME/collapse_sim/envs``, else ``~/.cache/collapse_sim/envs``) under a name
hashed from the requirements and the base interpreter, so the same requirements are built
once and shared by every run and task on the machine. The build holds a file lock (two tasks
never build it twice: the second waits and then uses the first's), happens in a temporary
directory beside the target and is renamed into place when pip has succeeded: a half-built
environment is never used. Only the environment's ``bin/python`` is ever run (``-m pip``,
scripts by path), so the rename does not matter to it.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

#: written into a finished environment: what it was built from
RECORD = "collapse_sim_env.json"


class EnvironmentBuildError(RuntimeError):
    """An environment could not be built; one line, with the build log's path."""


def cache_root() -> Path:
    """Where environments are kept."""
    if root := os.environ.get("COLLAPSE_SIM_ENVS"):
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "collapse_sim" / "envs"


def _requirements(requirements: Sequence[str]) -> list[str]:
    return [line.strip() for line in requirements if line.strip()]


def env_key(requirements: Sequence[str], python: str | None = None) -> str:
    """The cache name of an environment: a hash of its sorted requirements and of the base
    interpreter (its resolved path and version)."""
    base = python or sys.executable
    version = sys.version if python is None else ""
    payload = json.dumps({"requirements": sorted(_requirements(requirements)),
                          "python": os.path.realpath(base), "version": version}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def env_dir(requirements: Sequence[str], python: str | None = None, root: Path | None = None) -> Path:
    return Path(root or cache_root()) / env_key(requirements, python)


def env_python(path: Path) -> Path:
    return Path(path) / "bin" / "python"


def is_ready(path: Path) -> bool:
    """A finished environment: only a completed build is renamed to its final name."""
    return (Path(path) / RECORD).is_file() and env_python(path).exists()


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float) -> Iterator[None]:
    import fcntl

    deadline = time.monotonic() + timeout
    with open(path, "a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EnvironmentBuildError(f"waited {timeout:.0f} s for the lock {path} "
                                                "(another process is building this environment)") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def _run(cmd: list[str], log: Path, timeout: float, what: str) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        try:
            code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  timeout=timeout).returncode
        except subprocess.TimeoutExpired:
            raise EnvironmentBuildError(f"{what} took more than {timeout:.0f} s (log: {log})") from None
    if code:
        raise EnvironmentBuildError(f"{what} failed: {_last_error(log)} (log: {log})")


def _freeze(python: Path) -> list[str]:
    """The environment's installed packages, as ``pip freeze`` lists them (one per line; empty
    when pip does not answer in time: the record is informative, the build already succeeded)."""
    try:
        out = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return []
    return [line for line in out.stdout.splitlines() if line.strip()]


def _build(target: Path, requirements: list[str], python: str, timeout: float) -> None:
    root = target.parent
    for stale in root.glob(f".{target.name}.building-*"):  # left by a build that was killed
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}.building-"))
    log = root / f"{target.name}.log"
    log.write_text("")
    try:
        start = time.monotonic()
        _run([python, "-m", "venv", str(tmp)], log, timeout, f"creating a venv with {python}")
        reqfile = tmp / "requirements.txt"
        reqfile.write_text("\n".join(requirements) + "\n")
        _run([str(env_python(tmp)), "-m", "pip", "install", "--no-input", "-r", str(reqfile)], log,
             max(1.0, timeout - (time.monotonic() - start)), f"pip install {' '.join(requirements)}")
        record = {"requirements": requirements, "base_python": python, "packages": _freeze(env_python(tmp)),
                  "build_seconds": round(time.monotonic() - start, 1)}
        (tmp / RECORD).write_text(json.dumps(record, indent=1))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def ensure_env(requirements: Sequence[str], python: str | None = None, root: Path | None = None,
               timeout: float = 1800) -> Path:
    """The ``bin/python`` of the environment with ``requirements`` (pip requirement lines; pip
    options such as ``--extra-index-url URL`` allowed), built from ``python`` (default: this
    interpreter) if it is not in the cache yet. Raises EnvironmentBuildError, one line."""
    reqs = _requirements(requirements)
    if not reqs:
        raise ValueError("an environment needs at least one requirement")
    target = env_dir(reqs, python, root)
    if is_ready(target):
        return env_python(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(target.parent / f"{target.name}.lock", timeout):
        if not is_ready(target):  # another process may have built it while this one waited
            if target.exists():
                shutil.rmtree(target)
            _build(target, reqs, python or sys.executable, timeout)
    return env_python(target)


def env_record(python: Path) -> dict:
    """What an environment made by ``ensure_env`` was built from (its ``bin/python`` given)."""
    return json.loads((Path(python).parent.parent / RECORD).read_text())
