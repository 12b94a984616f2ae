"""The bond columns of a metrics row: the sampled molecules' bond graph and bond lengths against
the lineage's real training structures; nothing for periodic systems."""
from __future__ import annotations

from ase import Atoms
from ase.build import bulk

from collapse_sim.data.pools import Pool, real_structures
from collapse_sim.measure.data import bond_metrics
from collapse_sim.systems.molecules import conformer


def test_bond_metrics_for_molecules_only():
    ethanol = conformer("CCO")
    broken = ethanol.copy()
    broken.positions[-1] += 3.0
    row = bond_metrics([ethanol, broken], [ethanol], [])
    assert row["bond_graph_changed_sampled"] == 0.5 and row["bond_length_w1_sampled"] >= 0.0
    cu = bulk("Cu", "fcc", a=3.6, cubic=True)
    assert bond_metrics([cu], [cu], []) == {}
    assert bond_metrics([], [ethanol], []) == {}


def test_real_structures_takes_each_real_pool_once():
    a, b, c, s = (Atoms("H") for _ in range(4))
    gen0 = [Pool("real", 0, (a, b))]
    gen1 = [Pool("real", 0, (a,)), Pool("synthetic", 0, (s,)), Pool("real", 1, (c,))]
    assert [id(x) for x in real_structures([gen0, gen1])] == [id(a), id(b), id(c)]  # Atoms compare by value
