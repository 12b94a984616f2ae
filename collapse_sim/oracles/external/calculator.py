"""An ASE calculator in this process that forwards every calculation to a worker process.

A worker that dies, closes its socket or misses its deadline during a calculation is replaced
and the calculation repeated, ``restarts`` times over the calculator's life (default once);
after that the calculation raises ``WorkerLost``, one line naming the process. An error the
real calculator raises (an element its model does not know, say) comes back as
``CalculationFailed`` with the calculator's own message, and the worker lives on.

``shared=True`` takes the worker from a per-process cache keyed by its spec, so successive
labelling tasks in one process (a Ray worker, a ``--local`` run) pay the start-up (an
interpreter, torch, a model checkpoint: seconds) once; each new calculator resets the worker's
calculator (ASE ``reset``), which then labels as a freshly built one would. Cached workers stop
at interpreter exit.
"""
from __future__ import annotations

import numpy as np
from ase.calculators import calculator as ase_calculator
from ase.calculators.calculator import Calculator, all_changes

from collapse_sim.oracles.external.process import WorkerLost, WorkerProcess, WorkerSpec

_SHARED: dict[WorkerSpec, WorkerProcess] = {}


class CalculationFailed(RuntimeError):
    """The calculator in the worker raised; the message is its own."""


class RemoteCalculationFailed(CalculationFailed, ase_calculator.CalculationFailed):
    """The calculator in the worker raised ASE's ``CalculationFailed``: the calculation ran and
    failed on this structure, which the oracle's users treat as in-process (a policy drops it)."""


def shared_worker(spec: WorkerSpec, replace: WorkerProcess | None = None) -> WorkerProcess:
    """This process's worker for ``spec``, started if there is none alive, or if the cached one is
    ``replace`` (a worker its user found lost). Another user's newer worker is adopted, never
    replaced, so two calculators sharing a spec do not restart each other's workers."""
    worker = _SHARED.get(spec)
    if worker is None or worker is replace or not worker.alive:
        if worker is not None:
            worker.kill()
        worker = _SHARED[spec] = WorkerProcess(spec)
    return worker


def close_shared_workers() -> None:
    """Stop every cached worker of this process."""
    while _SHARED:
        _SHARED.popitem()[1].close()


class ExternalCalculator(Calculator):
    """``spec``'s calculator, run by a worker process; energies, forces and stress as it gives them."""

    def __init__(self, spec: WorkerSpec, restarts: int = 1, shared: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.spec, self.shared, self.restarts_left = spec, shared, restarts
        self.worker = shared_worker(spec) if shared else WorkerProcess(spec)
        if shared:
            self._reset()
        self.implemented_properties = list(self.worker.implemented_properties)

    def _reset(self) -> None:
        """A shared worker's calculator forgets what earlier users left in it (cached results,
        neighbour lists), so labels do not depend on which tasks ran before in this process."""
        try:
            self.worker.call({"op": "reset"})
        except WorkerLost:
            self.worker = shared_worker(self.spec, replace=self.worker)

    def _restart(self) -> None:
        if self.shared:
            self.worker = shared_worker(self.spec, replace=self.worker)
        else:
            self.worker.close()
            self.worker = WorkerProcess(self.spec)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        request = {"op": "calculate", "numbers": self.atoms.numbers.tolist(),
                   "positions": self.atoms.positions.tolist(), "cell": self.atoms.cell.array.tolist(),
                   "pbc": self.atoms.pbc.tolist(), "properties": list(properties)}
        while True:
            try:
                reply = self.worker.call(request)
                break
            except WorkerLost as exc:
                self.worker.kill()
                if self.restarts_left <= 0:
                    raise WorkerLost(f"{exc}; no restarts left") from None
                self.restarts_left -= 1
                self._restart()
        if not reply["ok"]:
            raise (RemoteCalculationFailed if reply.get("calculation_failed") else CalculationFailed)(reply["error"])
        self.results = {key: np.asarray(value) if isinstance(value, list) else value
                        for key, value in reply["results"].items()}

    def close(self) -> None:
        """Stop this calculator's worker (a shared one stays for the next calculator)."""
        if not self.shared:
            self.worker.close()
