"""The worker: serves one ASE calculator to the process that started it, over a Unix socket.

Runs by path (``python -I worker.py ...``) in another Python environment, where collapse_sim
is not installed: it needs only the standard library, numpy, ase and the calculator's package.
It connects to the socket given, builds the calculator, says hello (its implemented
properties, or the error that stopped it), then answers one JSON line per request until it
is told to exit or the socket closes (the parent has gone), and exits.

Requests: ``{"op": "calculate", "numbers", "positions", "cell", "pbc", "properties"}``,
``{"op": "reset"}`` (forget cached state, as a freshly built calculator), ``{"op": "ping"}``,
``{"op": "exit"}``. Replies: ``{"ok": true, ...}`` or ``{"ok": false,
"error": "Type: message"}``. Floats travel as JSON numbers, which Python writes and reads
back bit for bit.
"""
import argparse
import importlib
import json
import os
import socket
import sys


def _import(path):
    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _plain(value):
    """A result as JSON: arrays as nested lists, numpy scalars as numbers; None if not numeric."""
    import numpy as np

    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, np.ndarray) and value.dtype.kind in "fiu":
        return value.tolist()
    return None


def _error(exc):
    try:
        from ase.calculators.calculator import CalculationFailed
    except ImportError:
        failed = False
    else:
        failed = isinstance(exc, CalculationFailed)  # ran and failed (an SCF that did not converge), not a bad request
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}".splitlines()[0], "calculation_failed": failed}


def _calculate(calc, request):
    from ase import Atoms

    atoms = Atoms(numbers=request["numbers"], positions=request["positions"], cell=request["cell"],
                  pbc=request["pbc"])
    atoms.calc = calc  # calculators that check their elements do it here (set_atoms)
    for name in request["properties"]:
        calc.get_property(name, atoms)
    results = {key: _plain(value) for key, value in calc.results.items()}
    return {"ok": True, "results": {key: value for key, value in results.items() if value is not None}}


def serve(sock, calc):
    reader = sock.makefile("rb")
    for line in reader:
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            break
        try:
            if op == "calculate":
                reply = _calculate(calc, request)
            elif op == "reset":  # a new user of this worker: the calculator as if just built
                calc.reset()
                reply = {"ok": True}
            elif op == "ping":
                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown op {op!r}"}
        except Exception as exc:  # the calculator's own error goes back to the caller
            reply = _error(exc)
        sock.sendall(json.dumps(reply).encode() + b"\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--calculator", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--path", action="append", default=[])
    args = parser.parse_args(argv)
    sys.path[:0] = args.path
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    try:
        calc = _import(args.calculator)(**json.loads(args.kwargs))
        hello = {"ok": True, "pid": os.getpid(), "python": sys.executable,
                 "implemented_properties": list(getattr(calc, "implemented_properties", ["energy", "forces"]))}
    except BaseException as exc:
        sock.sendall(json.dumps(_error(exc)).encode() + b"\n")
        raise
    sock.sendall(json.dumps(hello).encode() + b"\n")
    try:
        serve(sock, calc)
    except (BrokenPipeError, ConnectionResetError):  # the parent went away
        pass
    finally:
        sock.close()


if __name__ == "__main__":
    main()
