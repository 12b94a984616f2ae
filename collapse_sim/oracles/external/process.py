"""One worker process and the connection to it: start, health check, calls with timeouts,
shutdown.

The parent listens on a Unix socket in a private temporary directory (mode 0700, so only
this user can connect; never a network port) and starts the worker with that path. The
worker is healthy when, within ``startup_timeout``, it has connected, built its calculator and
said hello. Every read has a deadline; a worker that exits, closes the socket or misses a
deadline raises ``WorkerLost`` naming the process and the last line of its log, never a hang.
The worker runs in its own session (a Ctrl-C meant for the run does not kill it half way) and
exits when its socket closes, so it cannot outlive the parent. Shutdown (``close``, garbage
collection, interpreter exit) asks it to exit, then terminates and kills it if it must.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path

WORKER_SCRIPT = Path(__file__).with_name("worker.py")


class WorkerLost(RuntimeError):
    """The worker process died, never became ready or did not answer in time."""


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker runs: ``calculator`` (import path) built with ``kwargs`` (JSON text) by
    ``python``, with ``pythonpath`` in front of its import path."""

    python: str
    calculator: str
    kwargs: str = "{}"
    pythonpath: tuple[str, ...] = ()
    startup_timeout: float = 300.0
    call_timeout: float = 600.0

    def command(self, socket_path: str) -> list[str]:
        cmd = [self.python, "-I", str(WORKER_SCRIPT), "--socket", socket_path, "--calculator", self.calculator,
               "--kwargs", self.kwargs]
        for entry in self.pythonpath:
            cmd += ["--path", entry]
        return cmd


def _private_dir() -> str:
    """A 0700 directory whose socket path fits the 107-byte limit of Unix socket names."""
    path = tempfile.mkdtemp(prefix="collapse-sim-worker-")
    if len(path) > 90:
        shutil.rmtree(path)
        path = tempfile.mkdtemp(prefix="collapse-sim-worker-", dir="/tmp")
    return path


def _shutdown(owner: int, proc: subprocess.Popen, sock: socket.socket | None, tmpdir: str, log) -> None:
    """Ask the worker to exit, then make sure it has; remove its directory (log included). Only
    the process that started it does this (not a forked child exiting with a copy of it)."""
    if os.getpid() != owner:
        return
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.settimeout(1.0)
            sock.sendall(b'{"op": "exit"}\n')
        with contextlib.suppress(OSError):
            sock.close()
    # the worker leads its own session: signal the group, so processes its calculator started
    # (an MPI launcher, a DFT code) stop with it
    for stop in (None, signal.SIGTERM, signal.SIGKILL):
        if stop is not None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, stop)
        try:
            proc.wait(timeout=2.0)
            break
        except subprocess.TimeoutExpired:
            continue
    log.close()
    shutil.rmtree(tmpdir, ignore_errors=True)


class WorkerProcess:
    """A started, healthy worker; ``call`` sends one request and returns the reply."""

    def __init__(self, spec: WorkerSpec):
        self.spec = spec
        self._tmpdir = _private_dir()
        self._log_path = Path(self._tmpdir) / "worker.log"
        self._buffer = b""
        path = os.path.join(self._tmpdir, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(1)
        except OSError as exc:
            listener.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise WorkerLost(f"oracle worker socket {path} could not be opened: {exc}") from None
        log = open(self._log_path, "wb")
        try:
            self.proc = subprocess.Popen(spec.command(path), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            listener.close()
            log.close()
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            raise WorkerLost(f"oracle worker process ({spec.calculator} in {spec.python}) could not be "
                             f"started: {exc}") from None
        self.sock: socket.socket | None = None
        self._finalizer = weakref.finalize(self, _shutdown, os.getpid(), self.proc, None, self._tmpdir, log)
        try:
            self.sock = self._accept(listener)
            self._finalizer.detach()
            self._finalizer = weakref.finalize(self, _shutdown, os.getpid(), self.proc, self.sock, self._tmpdir,
                                              log)
            hello = self._read(spec.startup_timeout, starting=True)
        except BaseException:
            self.kill()
            raise
        finally:
            listener.close()
        if not hello.get("ok"):
            message = self.describe(f"could not build its calculator: {hello.get('error')}")
            self.kill()
            raise WorkerLost(message)
        self.pid = hello["pid"]
        self.implemented_properties: list[str] = hello["implemented_properties"]

    def describe(self, what: str) -> str:
        """One line naming the worker process and what happened to it."""
        return (f"oracle worker process ({self.spec.calculator} in {self.spec.python}, pid {self.proc.pid}) "
                f"{what}")

    def _lost(self, what: str) -> WorkerLost:
        code = self.proc.poll()
        status = f"; exit code {code}" if code is not None else ""
        last = self.log_tail()
        return WorkerLost(self.describe(what + status + (f"; its log ends: {last}" if last else "")))

    def _disconnected(self, when: str, exc: OSError | None = None) -> WorkerLost:
        """The socket closed: the worker died (give it a moment to be reaped), or it hung up."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        if self.proc.poll() is not None:
            return self._lost(f"died {when}")
        return self._lost(f"closed its socket {when}" + (f" ({exc})" if exc else ""))

    def log_tail(self) -> str:
        try:
            lines = [line.strip() for line in self._log_path.read_text(errors="replace").splitlines()]
        except OSError:
            return ""
        return next((line for line in reversed(lines) if line), "")

    def _accept(self, listener: socket.socket) -> socket.socket:
        deadline = time.monotonic() + self.spec.startup_timeout
        listener.settimeout(0.2)
        while True:
            try:
                conn, _ = listener.accept()
                return conn
            except TimeoutError:
                pass
            if self.proc.poll() is not None:
                raise self._lost("exited before it connected")
            if time.monotonic() > deadline:
                raise self._lost(f"did not connect within {self.spec.startup_timeout:g} s")

    def _read(self, timeout: float, starting: bool = False) -> dict:
        """The next reply line, within ``timeout`` seconds."""
        assert self.sock is not None
        deadline, when = time.monotonic() + timeout, "while starting" if starting else "during a call"
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                field = "startup_timeout" if starting else "timeout"
                raise self._lost(f"did not answer within {timeout:g} s ({field})")
            self.sock.settimeout(min(left, 1.0))
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                if self.proc.poll() is not None:
                    raise self._lost(f"died {when}") from None
                continue
            except OSError as exc:
                raise self._disconnected(when, exc) from None
            if not chunk:
                raise self._disconnected(when)
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def call(self, request: dict) -> dict:
        """The reply to ``request``; WorkerLost if the worker dies or misses ``call_timeout``."""
        if self.sock is None:
            raise self._lost("was stopped")
        if self.proc.poll() is not None:
            raise self._lost("died before this call")
        try:
            self.sock.settimeout(self.spec.call_timeout)
            self.sock.sendall(json.dumps(request).encode() + b"\n")
        except OSError as exc:
            raise self._disconnected("during a call", exc) from None
        return self._read(self.spec.call_timeout)

    @property
    def alive(self) -> bool:
        return self.sock is not None and self.proc.poll() is None

    def close(self) -> None:
        """Stop the worker (idempotent)."""
        self._finalizer()
        self.sock = None

    def kill(self) -> None:
        """Stop a worker that cannot be asked (lost, hung): SIGKILL, then the usual clean-up."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the calculator's children too
        self.close()

