"""Any ASE calculator as the oracle (EMT for metals, tblite's GFN2-xTB, a DFT code...)."""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Literal

from ase import Atoms
from ase.calculators.calculator import Calculator
from pydantic import Field, field_validator

from collapse_sim.data.structures import attach_labels
from collapse_sim.oracles.base import KINDS, OracleSettingsBase


def import_object(path: str) -> Any:
    """Import ``package.module.Name``; raise ValueError with a readable message."""
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"{path!r} is not a dotted import path")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} ({exc})") from None
    if not hasattr(module, attr):
        raise ValueError(f"module {module_name!r} has no attribute {attr!r}")
    return getattr(module, attr)


#: calculators of optional dependencies: top-level package -> how to install it
INSTALL_HINTS = {"chgnet": "pip install 'collapse-sim[teacher]' (or: pip install chgnet==0.4.2)"}


class ASEOracleSettings(OracleSettingsBase):
    """Any ASE calculator class, by import path, with keyword arguments."""

    kind: Literal["ase"] = "ase"
    calculator: str = Field("ase.calculators.emt.EMT", description="import path of an ASE Calculator class")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="keyword arguments for the calculator")

    @field_validator("calculator")
    @classmethod
    def _importable(cls, value: str) -> str:
        try:
            import_object(value)
        except ValueError as exc:
            hint = INSTALL_HINTS.get(value.split(".")[0])
            if hint:
                raise ValueError(f"{exc}; install it with: {hint}") from None
            raise
        return value


class ASEOracle:
    """label(structures) -> labelled copies; stress is kept for fully periodic cells."""

    def __init__(self, settings):
        self.settings = settings
        self.name = settings.calculator

    def calculator(self) -> Calculator:
        return import_object(self.settings.calculator)(**self.settings.kwargs)

    def label(self, structures: Sequence[Atoms], calculator: Calculator | None = None,
              noise_seeds: Sequence[int] | None = None) -> list[Atoms]:
        """With ``energy_noise`` > 0, ``noise_seeds`` (one per structure: the seed the recipe plan
        gave it) key the Gaussian noise added to each energy (``collapse_sim.data.noise``)."""
        sigma = self.settings.energy_noise
        if sigma and (noise_seeds is None or len(noise_seeds) != len(structures)):
            raise ValueError("a noisy oracle (energy_noise > 0) needs one noise seed per structure")
        calc = calculator or self.calculator()
        out = []
        for atoms in structures:
            work = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc, info=dict(atoms.info))
            work.calc = calc
            energy = work.get_potential_energy()
            forces = work.get_forces()
            stress = work.get_stress() if work.pbc.all() and "stress" in calc.implemented_properties else None
            work.calc = None
            out.append(attach_labels(work, energy, forces, stress))
        if sigma:
            from collapse_sim.data.noise import oracle_noise, shift_energies

            out = shift_energies(out, oracle_noise(sigma, noise_seeds))
        return out

    def check(self, atoms: Atoms) -> None:
        """Fail early, with one readable line, if the oracle cannot label this system."""
        try:
            self.label([atoms], noise_seeds=[0])
        except Exception as exc:  # calculators signal unsupported input in many ways
            raise ValueError(f"oracle {self.name} cannot label {atoms.get_chemical_formula()}: {exc}") from None


KINDS.register(ASEOracleSettings, ASEOracle)
