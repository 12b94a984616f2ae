"""A trivial oracle: the same energy for every structure and zero forces (and stress).

Used where labels carry no information, e.g. the ``gaussian`` system, whose samples are
positions and whose model is fitted to the positions alone."""
from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class Constant(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, energy: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.energy = float(energy)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": self.energy, "free_energy": self.energy,
                        "forces": np.zeros((len(self.atoms), 3)), "stress": np.zeros(6)}
