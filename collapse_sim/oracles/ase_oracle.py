"""Any ASE calculator as the oracle (EMT for metals, tblite's GFN2-xTB, a DFT code...)."""
from __future__ import annotations

from typing import Sequence

from ase import Atoms
from ase.calculators.calculator import Calculator

from collapse_sim.scenario import import_object
from collapse_sim.structures import attach_labels


class ASEOracle:
    """label(structures) -> labelled copies; stress is kept for fully periodic cells."""

    def __init__(self, settings):
        self.settings = settings
        self.name = settings.calculator

    def calculator(self) -> Calculator:
        return import_object(self.settings.calculator)(**self.settings.kwargs)

    def label(self, structures: Sequence[Atoms], calculator: Calculator | None = None) -> list[Atoms]:
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
        return out

    def check(self, atoms: Atoms) -> None:
        """Fail early, with one readable line, if the oracle cannot label this system."""
        try:
            self.label([atoms])
        except Exception as exc:  # calculators signal unsupported input in many ways
            raise ValueError(f"oracle {self.name} cannot label {atoms.get_chemical_formula()}: {exc}") from None
