"""Chemistry metrics: bond graphs and bond lengths of molecules (oracle-like MD keeps the graph,
an exploded molecule does not), per-element force RMSE and the per-composition energy fit."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk

from collapse_sim.metrics import (
    bond_graph,
    bond_graph_changed,
    bond_length_w1,
    bond_lengths,
    composition_fit_rmse,
    force_rmse_per_element,
)
from collapse_sim.systems.molecules import conformer


def _md(atoms: Atoms, seed: int, frames: int = 8, interval: int = 10) -> list[Atoms]:
    """Frames of a 300 K Langevin run with GFN2-xTB (a few ms a step for a small molecule)."""
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from tblite.ase import TBLite

    atoms = atoms.copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(seed))
    dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.02, fixcm=False,
                   rng=np.random.default_rng(seed + 1))
    out = []
    for _ in range(frames):
        dyn.run(interval)
        out.append(Atoms(atoms.numbers, atoms.positions.copy(), pbc=False))
    return out


@pytest.fixture(scope="module")
def ethanol_md():
    """(real, synthetic): two independent oracle MD runs of ethanol at 300 K."""
    ethanol = conformer("CCO")
    return _md(ethanol, 0), _md(ethanol, 10)


def test_bond_graph_of_ethanol():
    graph = bond_graph(conformer("CCO"))
    assert len(graph) == 8  # C-C, C-O, 5 C-H, O-H
    assert bond_graph(conformer("CCO"), scale=0.5) == frozenset()


def test_oracle_md_keeps_the_bond_graph(ethanol_md):
    real, synthetic = ethanol_md
    assert bond_graph_changed(synthetic, real) == 0.0
    assert bond_graph_changed(synthetic, [conformer("CCO")]) == 0.0
    assert bond_length_w1(synthetic, real) < 0.02


def test_exploded_molecules_change_the_bond_graph(ethanol_md):
    real, synthetic = ethanol_md
    pulled = synthetic[0].copy()
    h = int(np.flatnonzero(pulled.numbers == 1)[0])
    pulled.positions[h] += 3.0 * (pulled.positions[h] - pulled.get_center_of_mass()) / np.linalg.norm(
        pulled.positions[h] - pulled.get_center_of_mass())
    scrambled = synthetic[1].copy()
    scrambled.positions = scrambled.positions[np.random.default_rng(0).permutation(len(scrambled))]
    assert bond_graph_changed([pulled, scrambled, *synthetic[2:4]], real) == 0.5
    other = conformer("CC")  # a molecule no real structure is: changed by definition
    assert bond_graph_changed([other], real) == 1.0


def test_bond_length_w1_of_a_uniformly_stretched_set(ethanol_md):
    """Every bond ×1.05 (still within the cutoff): W1 per pair = 0.05 × its mean length, so the
    count-weighted mean is 0.05 × the mean bond length."""
    real, _ = ethanol_md
    stretched = [Atoms(a.numbers, 1.05 * a.positions, pbc=False) for a in real]
    lengths = np.concatenate(list(bond_lengths(real).values()))
    assert sorted(bond_lengths(real)) == ["C-C", "C-H", "C-O", "H-O"]
    assert bond_length_w1(stretched, real) == pytest.approx(0.05 * lengths.mean(), rel=1e-9)
    assert bond_length_w1(real, real) == 0.0


def test_bond_metrics_refuse_periodic_and_empty_input():
    with pytest.raises(ValueError, match="isolated"):
        bond_graph(bulk("Cu", "fcc", a=3.6))
    with pytest.raises(ValueError):
        bond_graph_changed([], [conformer("CCO")])
    with pytest.raises(ValueError, match="no element pair"):
        bond_length_w1([Atoms("H2", [[0, 0, 0], [0, 0, 3]])], [conformer("CCO")])


def test_force_rmse_per_element_by_hand():
    errors = np.array([[3.0, 0, 0], [0, 0, 0], [1.0, 1.0, 1.0], [0, 2.0, 0]])
    numbers = np.array([6, 6, 1, 8])
    got = force_rmse_per_element(errors, numbers)
    assert got == pytest.approx({"C": np.sqrt(9 / 6), "H": 1.0, "O": np.sqrt(4 / 3)})
    with pytest.raises(ValueError):
        force_rmse_per_element(errors, numbers[:3])


def test_composition_fit_removes_per_element_offsets():
    rng = np.random.default_rng(0)
    numbers = [rng.choice([1, 6, 8], size=rng.integers(3, 12)) for _ in range(20)]
    offsets = {1: -0.4, 6: 1.3, 8: 2.1}
    shift = np.array([sum(offsets[z] for z in zs) for zs in numbers])
    n_atoms = np.array([len(zs) for zs in numbers])
    assert composition_fit_rmse(shift, numbers) == pytest.approx(0.0, abs=1e-12)
    assert composition_fit_rmse(shift, [np.full(len(zs), 29) for zs in numbers]) > 0.1
    noise = rng.normal(0, 0.01, size=20)
    assert composition_fit_rmse(shift + noise, numbers) == pytest.approx(composition_fit_rmse(noise, numbers))
    # one-atom structures of one element: the fit takes out the mean error, nothing else
    centred_rmse = np.sqrt(np.mean((noise - noise.mean()) ** 2))
    assert composition_fit_rmse(noise, [np.array([6])] * 20) == pytest.approx(centred_rmse)
    # one element: the fit removes a constant per-atom offset
    assert composition_fit_rmse(0.3 * n_atoms, [np.full(n, 29) for n in n_atoms]) == pytest.approx(0.0, abs=1e-12)
