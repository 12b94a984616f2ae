"""Representations are data-governed (Edamadaka et al. 2025): two MACE models trained with
different seeds on the same data align more than a trained and a randomly initialised one.

Tiny, briefly trained models do not separate (random MACE features of rattled crystals
already preserve neighbourhoods), so this needs the quickstart-size model and real
training: marked slow (run with ``python -m pytest -m slow``)."""
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from collapse_sim.data.structures import attach_labels
from collapse_sim.metrics import cknna
from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.model import MACEModel


def varied_cu(n: int, seed: int):
    """fcc Cu-32 with independent random strain and rattle amplitude, EMT-labelled."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)
        eps = rng.uniform(-0.04, 0.04, (3, 3))
        atoms.set_cell(atoms.cell[:] @ (np.eye(3) + 0.5 * (eps + eps.T)), scale_atoms=True)
        atoms.positions += rng.normal(0, rng.uniform(0.02, 0.15), atoms.positions.shape)
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


@pytest.mark.slow
def test_trained_models_align_more_with_each_other_than_with_a_random_one():
    train, probe = varied_cu(60, 0), varied_cu(50, 99)
    a, b = (MACEModel(MACESettings(epochs=40, batch_size=5), threads=2).fit(train, seed=s) for s in (0, 7))
    untrained = MACEModel(MACESettings(epochs=0)).fit(train, seed=3)
    ea, eb, eu = (m.embed(probe) for m in (a, b, untrained))
    trained_pair = cknna(ea, eb, k=5)
    assert trained_pair > cknna(ea, eu, k=5) + 0.15 and trained_pair > cknna(eb, eu, k=5) + 0.15
