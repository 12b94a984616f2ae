"""An ASE calculator that lives in another Python environment, as the oracle (``kind: external``).

SevenNet-0 is the case in point: its package needs e3nn >= 0.5 while mace-torch pins e3nn 0.4.4,
so it cannot be imported here. The package builds the calculator's environment on demand from
pip requirements (``collapse_sim.runtime.venvs``: a cached venv, built once under a file lock),
starts a worker process in it and hands the labelling code an ordinary ASE calculator that
forwards each calculation to the worker over a Unix socket::

    oracle:
      kind: external
      calculator: sevenn.calculator.SevenNetCalculator
      kwargs: {model: 7net-0, device: cpu}
      environment: [sevenn==0.13.0, torch==2.13.0]

Why this mechanism and not the others at hand:

- ASE's socket I/O (``SocketIOCalculator``, the i-PI protocol) streams positions and cell to a
  client whose atoms were fixed when it started: a change of elements, atom count or
  periodicity is refused ("Please create new socket calculator"), i.e. a new client process and
  a model reload per composition, while an oracle labels structures of any size and
  composition. Its client reports nothing when the calculator raises (the connection just
  closes), so "this model does not know Xe" could not come back as a readable line, and ASE
  puts its Unix sockets at fixed names under /tmp rather than in a private directory.
- Ray's ``runtime_env`` builds environments only inside a Ray cluster, whereas labelling also
  runs in ``--local`` runs and in tests without Ray, and a task there would still hold the
  model once per task rather than once per process.

So the worker speaks a small protocol of its own, JSON lines (one request, one reply: the whole
structure in, every numeric result out, errors as messages), over a Unix socket in a 0700
temporary directory. JSON numbers carry float64 exactly, so labels are bit for bit those of
the calculator run in its own environment. Reliability (health check, timeouts on every read,
one restart, clean shutdown) is in ``process`` and ``calculator``.
"""
from __future__ import annotations

import json
import re
import sys
from typing import Any, Literal

from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field, field_validator

from collapse_sim.oracles.ase_oracle import ASEOracle
from collapse_sim.oracles.base import KINDS, OracleSettingsBase
from collapse_sim.oracles.external.calculator import CalculationFailed, ExternalCalculator
from collapse_sim.oracles.external.process import WorkerLost, WorkerSpec
from collapse_sim.runtime.venvs import EnvironmentBuildError, ensure_env
from collapse_sim.settings_base import Strict

_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


class WorkerSettings(Strict):
    """Where a calculator's worker process runs and how long it may take: shared by the
    ``external`` oracle and a ``frozen`` model whose calculator runs elsewhere."""

    environment: list[str] = Field(default_factory=list,
                                   description="pip requirement lines of the calculator's environment, built on "
                                               "first use and cached; ase is added if not named; empty: run "
                                               "`python` as it is")
    python: str | None = Field(None, description="interpreter: the environment's base, or (without environment) "
                                                 "the one that runs the worker; default: this one")
    pythonpath: list[str] = Field(default_factory=list,
                                  description="directories put in front of the worker's import path")
    startup_timeout: float = Field(300.0, gt=0, description="seconds for the worker to start and build the calculator")
    timeout: float = Field(600.0, gt=0, description="seconds for one calculation")
    restarts: int = Field(1, ge=0, description="worker restarts allowed per labelling task")


class ExternalOracleSettings(OracleSettingsBase, WorkerSettings):
    """An ASE calculator class, by import path, built and run in another Python environment."""

    kind: Literal["external"] = "external"
    calculator: str = Field(description="import path of an ASE Calculator class in that environment")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the calculator (JSON)")

    @field_validator("calculator")
    @classmethod
    def _dotted(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", value):
            raise ValueError(f"{value!r} is not a dotted import path (package.module.Class)")
        return value

    @field_validator("kwargs")
    @classmethod
    def _json(cls, value: dict) -> dict:
        try:
            json.dumps(value)
        except TypeError as exc:
            raise ValueError(f"must be plain JSON values ({exc})") from None
        return value


def requirements(settings: ExternalOracleSettings) -> list[str]:
    """The environment's requirement lines, with ``ase`` (the worker needs it) added if not named."""
    lines = [line.strip() for line in settings.environment if line.strip()]
    names = {m.group(1).lower() for line in lines if not line.startswith("-") and (m := _NAME.match(line))}
    return lines + ([] if "ase" in names else ["ase"])


def worker_spec(settings: ExternalOracleSettings) -> WorkerSpec:
    """Where and how the worker runs; builds the environment first if it is not cached."""
    if settings.environment:
        python = str(ensure_env(requirements(settings), settings.python))
    else:
        python = settings.python or sys.executable
    return WorkerSpec(python=python, calculator=settings.calculator, kwargs=json.dumps(settings.kwargs, sort_keys=True),
                      pythonpath=tuple(settings.pythonpath), startup_timeout=settings.startup_timeout,
                      call_timeout=settings.timeout)


def prepare(settings: ExternalOracleSettings) -> str:
    """Build (or find) the environment and start the worker once: the interpreter it runs."""
    spec = worker_spec(settings)
    ExternalCalculator(spec).close()
    return spec.python


class ExternalOracle(ASEOracle):
    """Labels as the ``ase`` oracle does, through a calculator served by a worker process."""

    def calculator(self) -> Calculator:
        return ExternalCalculator(worker_spec(self.settings), restarts=self.settings.restarts, shared=True)

    def check(self, atoms: Atoms) -> None:
        """Builds the environment, starts a worker and labels ``atoms`` once: ValueError, one line
        naming the field, if any of that fails. The worker stops afterwards (the run's labelling
        may happen in other processes)."""
        try:
            calc = ExternalCalculator(worker_spec(self.settings), restarts=self.settings.restarts)
        except EnvironmentBuildError as exc:
            raise ValueError(f"environment: {exc}") from None
        except WorkerLost as exc:
            raise ValueError(f"calculator: {exc}") from None
        try:
            self.label([atoms], calc, noise_seeds=[0])
        except (CalculationFailed, WorkerLost) as exc:
            raise ValueError(f"calculator {self.name} cannot label {atoms.get_chemical_formula()}: {exc}") from None
        finally:
            calc.close()


KINDS.register(ExternalOracleSettings, ExternalOracle)
