"""Accuracy columns resolved by chemistry: per-element force RMSE and the energy RMSE after a
per-composition fit, on the probe sets; and how the catalogue describes per-element columns."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from collapse_sim.measure.accuracy import label_rmse, probe_rmse
from collapse_sim.measure.catalogue import describe
from collapse_sim.systems.molecules import conformer

OFFSETS = {1: -0.4, 6: 1.3, 8: 2.1}  # eV per atom of each element


def _labelled(atoms: Atoms, energy: float, forces: np.ndarray) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


class ShiftedModel:
    """Exact energies plus a constant per-element offset; forces off by 0.01 eV/Å on oxygens only."""

    def predict(self, structures):
        out = []
        for a in structures:
            forces = a.get_forces() + 0.01 * (a.numbers == 8)[:, None]
            out.append(_labelled(a, a.get_potential_energy() + sum(OFFSETS[z] for z in a.numbers), forces))
        return out


@pytest.fixture(scope="module")
def probes():
    rng = np.random.default_rng(0)
    molecules = [conformer(s) for s in ("CCO", "C", "CC(=O)O", "OCCO", "C=C", "CCCC")]
    return {"id": [_labelled(m, rng.normal(), rng.normal(size=(len(m), 3))) for m in molecules]}


def test_probe_rmse_resolves_offsets_and_elements(probes):
    row = probe_rmse(ShiftedModel(), probes)
    raw_energy, raw_forces = label_rmse(ShiftedModel().predict(probes["id"]), probes["id"])
    assert row["rmse_energy_id"] == raw_energy and row["rmse_forces_id"] == raw_forces
    assert raw_energy > 300.0  # the offsets dominate the raw energy column ...
    assert row["rmse_energy_id_composition"] == pytest.approx(0.0, abs=1e-9)  # ... and the fit removes them
    assert row["rmse_forces_id_H"] == 0.0 and row["rmse_forces_id_C"] == 0.0
    assert row["rmse_forces_id_O"] == pytest.approx(10.0)  # meV/Å: every component of every O off by 0.01 eV/Å
    per_element = {c for c in row if c.startswith("rmse_forces_id_")}
    assert per_element == {"rmse_forces_id_H", "rmse_forces_id_C", "rmse_forces_id_O"}


def test_per_element_columns_are_described():
    m = describe("rmse_forces_ood_N")
    assert (m.unit, m.degrade, m.figure, m.col, m.label) == ("meV/Å", "up", "accuracy", "OOD", "N force RMSE")
    assert m.pattern == "rmse_forces_{probe}_{element}"
    assert describe("rmse_forces_id_Cu").row == "rmse_forces_Cu"
    assert describe("rmse_forces_id_Qq").figure == "other"
    assert describe("rmse_energy_ood_composition").unit == "meV/atom"


