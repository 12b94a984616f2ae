"""A model that is never trained: a teacher at the head of a lineage, or a member of a model zoo
for the representation analysis.

It is built from one of two sources, given in its settings:

* ``calculator``: any ASE calculator class by import path, with ``kwargs`` (as the ``ase``
  oracle takes them): EMT, a foundation model's calculator, a DFT code; with ``environment``
  (or ``python``) it runs in its own Python environment behind a worker process, as the
  ``external`` oracle does (e.g. SevenNet-0, whose e3nn cannot share MACE's environment);
* ``model``: another kind's settings, with ``path`` the file that kind saved (its ``load``
  reads it); without ``path`` the kind must be pretrained (``chgnet``), and its published
  weights are used as they are.

Both are settings, not objects, so a scenario says what the frozen model is and a saved frozen
model is a small JSON file from which it is rebuilt; the fingerprint recorded at save time is
checked when it is loaded, so a changed checkpoint or calculator version cannot pass for the
same model.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field, model_validator

from collapse_sim.data.structures import attach_labels
from collapse_sim.models.base import FEATURES, FROZEN, KINDS, ModelSettingsBase, capabilities
from collapse_sim.oracles.ase_oracle import INSTALL_HINTS, import_object
from collapse_sim.oracles.external import WorkerSettings
from collapse_sim.runtime.atomic import atomic_write_bytes
from collapse_sim.settings_base import kind_union

FORMAT = "collapse_sim.frozen/1"
log = logging.getLogger(__name__)


class FrozenSettings(ModelSettingsBase, WorkerSettings):
    """A model used as it is: an ASE calculator (``calculator`` + ``kwargs``) or another kind's
    model (``model`` + ``path``, or a pretrained kind's published weights). ``fit`` trains
    nothing; every generation of such a lineage is the same model."""

    kind: Literal["frozen"]
    calculator: str | None = Field(None, description="import path of an ASE Calculator class, e.g. "
                                                     "ase.calculators.emt.EMT (or give model)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the calculator")
    model: kind_union(KINDS, default="mace") | None = Field(  # type: ignore[valid-type]
        None, description="settings of the wrapped model, any model kind (or give calculator)")
    path: str | None = Field(None, description="file the wrapped model's kind saved (its load reads it); "
                                               "omit for a pretrained kind's published weights")

    @property
    def elsewhere(self) -> bool:
        """The calculator runs in a worker process (its own environment or interpreter)."""
        return bool(self.environment) or self.python is not None

    def worker_oracle(self):
        """The calculator in its worker process, as the ``external`` oracle's settings."""
        from collapse_sim.oracles.external import ExternalOracleSettings

        worker = self.model_dump(include=set(WorkerSettings.model_fields))
        return ExternalOracleSettings(calculator=self.calculator, kwargs=self.kwargs, **worker)

    def runtime_check(self, atoms: Atoms) -> None:
        """Before a run: a calculator in another process is built and labels ``atoms`` once
        (ValueError, one line), so a wrong import path or environment fails before anything runs."""
        if self.calculator is not None and self.elsewhere:
            from collapse_sim.oracles.external import ExternalOracle

            ExternalOracle(self.worker_oracle()).check(atoms)

    @model_validator(mode="after")
    def _one_source(self) -> FrozenSettings:
        if (self.calculator is None) == (self.model is None):
            raise ValueError("give calculator (an ASE calculator) or model (another kind's settings), not both")
        if self.calculator is not None and self.path is not None:
            raise ValueError("path: names a saved model; a calculator is built from calculator and kwargs")
        if self.model is not None and self.elsewhere:
            raise ValueError("environment: only a calculator runs in an environment of its own")
        if self.calculator is not None and not self.elsewhere:  # else it is imported by its worker
            try:
                import_object(self.calculator)
            except ValueError as exc:
                hint = INSTALL_HINTS.get(self.calculator.split(".")[0])
                raise ValueError(f"calculator: {exc}; install it with: {hint}" if hint
                                 else f"calculator: {exc}") from None
        if self.model is not None:
            if self.model.kind == "frozen":
                raise ValueError("model.kind: a frozen model wraps a trainable kind or a calculator, not a frozen one")
            if not self.model.atomistic:
                raise ValueError(f"model.kind: {self.model.kind!r} is not a potential of atoms")
            if self.path is None and not _pretrained(self.model):
                raise ValueError(f"path: a frozen {self.model.kind} needs the file of a saved model (the kind has "
                                 "no published weights)")
            if self.path is not None and not Path(self.path).expanduser().is_file():
                raise ValueError(f"path: {self.path!r} is not a file")
        return self

    def pretrained_species(self) -> frozenset[str] | None:
        """The wrapped kind's (a saved model of a kind without published weights knows only what
        it was trained on, which the scenario's system is taken to be); a calculator's are not
        known before it runs (None)."""
        return self.model.pretrained_species() if self.model is not None else None

    def check(self, scenario) -> None:
        """The wrapped kind's own needs. (Without features the metric suite leaves out the
        embedding and alignment columns and says so in ``metric_warnings``.)"""
        if self.model is not None:
            self.model.check(scenario)


def _pretrained(settings) -> bool:
    """Whether a kind's model has weights before any fit: its settings ask for published ones
    (``pretrained: true``). Read from the settings, so validation imports no model package."""
    return bool(getattr(settings, "pretrained", False))


def _package_version(import_path: str) -> str:
    try:
        return importlib.metadata.version(import_path.split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class FrozenModel:
    """A calculator or another kind's model behind the Model protocol, never trained."""

    capabilities: ClassVar[frozenset[str]] = frozenset({FROZEN})

    def __init__(self, settings: FrozenSettings, threads: int | None = None):
        self.settings = settings
        self.threads = threads
        self.fit_info: dict = {"frozen": True}
        self.inner = None
        if settings.model is not None:
            inner_cls = KINDS.implementation(settings.model.kind)
            self.inner = (inner_cls.load(Path(settings.path).expanduser(), settings.model, threads=threads)
                          if settings.path else inner_cls(settings.model, threads=threads))
            # an instance attribute: what this frozen model offers depends on what it wraps
            self.capabilities = FrozenModel.capabilities | (capabilities(self.inner) & {FEATURES})
        self._calc: Calculator | None = None

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> FrozenModel:
        """Train nothing: the model stays as it is (logged, and written to ``log_path``)."""
        message = f"frozen model ({self.source()}): nothing trained on {len(train)} structures"
        log.info(message)
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            Path(log_path).write_text(json.dumps({"frozen": True, "message": message}) + "\n")
        return self

    def source(self) -> str:
        s = self.settings
        return s.calculator if s.calculator else f"{s.model.kind}{' from ' + s.path if s.path else ''}"

    def _calculator(self) -> Calculator:
        if self._calc is None:
            self._calc = self.calculator()
        return self._calc

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies: the wrapped model's predict, or the calculator's energy, forces and
        (fully periodic cells, if it has it) stress."""
        if self.inner is not None:
            return self.inner.predict(structures)
        calc, out = self._calculator(), []
        for atoms in structures:
            work = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc, info=dict(atoms.info))
            work.calc = calc
            stress = work.get_stress() if work.pbc.all() and "stress" in calc.implemented_properties else None
            out.append(attach_labels(atoms, work.get_potential_energy(), work.get_forces(), stress))
        return out

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """The wrapped model's features; a calculator has none."""
        if FEATURES not in capabilities(self):
            raise NotImplementedError(f"frozen model ({self.source()}) has no per-structure features")
        return self.inner.embed(structures)

    def calculator(self) -> Calculator:
        """The wrapped model's calculator, or a new instance of the calculator class (in this
        process, or served by a worker in its own environment)."""
        if self.inner is not None:
            return self.inner.calculator()
        s = self.settings
        if s.elsewhere:
            from collapse_sim.oracles.external import worker_spec
            from collapse_sim.oracles.external.calculator import ExternalCalculator

            return ExternalCalculator(worker_spec(s.worker_oracle()), shared=True)
        return import_object(s.calculator)(**s.kwargs)

    def fingerprint(self) -> str:
        """The wrapped model's fingerprint; for a calculator, 'sha256:' + 16 hex digits of its
        import path, kwargs and its package's version."""
        if self.inner is not None:
            return self.inner.fingerprint()
        s = self.settings
        version = ", ".join(s.environment) if s.environment else _package_version(s.calculator)
        identity = json.dumps({"calculator": s.calculator, "kwargs": s.kwargs, "version": version},
                              sort_keys=True, default=str)
        return "sha256:" + hashlib.sha256(identity.encode()).hexdigest()[:16]

    def save(self, path: Path) -> None:
        """A small JSON file: the settings it is rebuilt from and the fingerprint to check."""
        data = {"format": FORMAT, "settings": self.settings.model_dump(mode="json"),
                "fingerprint": self.fingerprint()}
        atomic_write_bytes(Path(path), (json.dumps(data, indent=1) + "\n").encode())

    @classmethod
    def load(cls, path: Path, settings: FrozenSettings, threads: int | None = None) -> FrozenModel:
        """The frozen model saved at ``path``, rebuilt from the settings in the file; ValueError
        if the rebuilt model is not the one saved (a changed checkpoint or calculator version)."""
        data = json.loads(Path(path).read_text())
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a collapse_sim frozen model file")
        obj = cls(FrozenSettings.model_validate(data["settings"]), threads=threads)
        if obj.fingerprint() != data["fingerprint"]:
            raise ValueError(f"{path}: the frozen model rebuilt from {obj.source()} has fingerprint "
                             f"{obj.fingerprint()}, not the saved {data['fingerprint']}")
        return obj


KINDS.register(FrozenSettings, FrozenModel)
