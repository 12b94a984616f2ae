"""Tests for collapse_sim.samplers.batched_langevin (the batched Langevin engine) against the ASE
engine, MACEModel.predict and the canonical ensemble; tiny MACE on EMT-labelled fcc Cu."""
from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT

from collapse_sim.data.structures import attach_labels
from collapse_sim.models.mace import MACESettings
from collapse_sim.models.mace.batched import MACEPotential
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers import ModelRef
from collapse_sim.samplers.batched_langevin import BatchedLangevin, CalculatorPotential, run_replicas
from collapse_sim.samplers.langevin import LangevinSampler, LangevinSettings, run_replica
from collapse_sim.systems.md import langevin

TINY = MACESettings(hidden_irreps="8x0e+8x1o", MLP_irreps="8x0e", radial_MLP=[16, 16], epochs=2, batch_size=5)
SHORT = dict(kind="langevin", steps=4, equilibration_steps=2, interval=2)


def _cu(seed: int, stdev: float = 0.08) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)  # 32 atoms
    atoms.rattle(stdev=stdev, seed=seed)
    return atoms


def _labelled(atoms: Atoms) -> Atoms:
    atoms = atoms.copy()
    atoms.calc = EMT()
    return attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces())


@pytest.fixture(scope="module")
def model() -> MACEModel:
    return MACEModel(TINY, threads=2).fit([_labelled(_cu(i)) for i in range(10)], seed=0)


@pytest.fixture(scope="module")
def model_ref(model, tmp_path_factory) -> ModelRef:
    path = tmp_path_factory.mktemp("batched") / "model.pt"
    model.save(path)
    return ModelRef(TINY, path)


def _replicas() -> list[Atoms]:
    """Periodic cells of different sizes and shapes; one atom sits a lattice vector outside its cell."""
    small = bulk("Cu", "fcc", a=3.7, cubic=True)  # 4 atoms, cell shorter than r_max: many images
    small.rattle(0.05, seed=3)
    sheared = _cu(2)
    sheared.set_cell(sheared.cell[:] @ (np.eye(3) + [[0, 0.05, 0], [0, 0, 0], [0.03, 0, 0]]), scale_atoms=True)
    outside = _cu(1)
    outside.positions[0] += outside.cell[0] - outside.cell[2]
    return [outside, small, sheared]


def _reference(model, structures, positions):
    moved = [Atoms(a.numbers, positions[lo:hi], cell=a.cell, pbc=a.pbc)
             for a, lo, hi in zip(structures, *_bounds(structures))]
    labelled = model.predict(moved)
    return np.array([a.get_potential_energy() for a in labelled]), np.concatenate([a.get_forces() for a in labelled])


def _bounds(structures):
    ptr = np.cumsum([0] + [len(a) for a in structures])
    return ptr[:-1], ptr[1:]


def _assert_matches(batched, reference):
    np.testing.assert_allclose(batched[0], reference[0], rtol=0, atol=2e-4)  # eV, |E| ~ 100 eV in float32
    np.testing.assert_allclose(batched[1], reference[1], rtol=0, atol=2e-5)  # eV/Å


# ------------------------------------------------------------------------------ MACE potential
def test_mace_potential_matches_predict_before_and_after_rebuilds(model):
    structures = _replicas()
    forces = MACEPotential(model, skin=1.0).bind(structures)
    positions = np.concatenate([a.positions for a in structures])
    _assert_matches(forces(positions), _reference(model, structures, positions))
    assert forces.rebuilds.tolist() == [1, 1, 1]

    rng = np.random.default_rng(0)
    step = rng.normal(size=positions.shape)
    positions = positions + 0.45 * step / np.linalg.norm(step, axis=1, keepdims=True)  # < skin/2: no rebuild
    _assert_matches(forces(positions), _reference(model, structures, positions))
    assert forces.rebuilds.tolist() == [1, 1, 1]

    lo, hi = _bounds(structures)
    positions[lo[2]:hi[2]] += rng.normal(scale=0.15, size=(hi[2] - lo[2], 3))  # beyond skin/2 from the rebuild
    _assert_matches(forces(positions), _reference(model, structures, positions))
    assert forces.rebuilds.tolist() == [1, 1, 2]


def test_lanes_split_the_replicas_and_agree_with_one_lane(model):
    """threads=2 on CPU: two graphs, each on its own core; the same forces as one graph up to
    float32 rounding, bit-identical from call to call, and no threads left behind."""
    import copy
    import gc
    import threading
    import time

    structures = _replicas() + [_cu(7)]
    positions = np.concatenate([a.positions for a in structures])
    serial = copy.copy(model)
    serial.threads = 1
    one, two = MACEPotential(serial), MACEPotential(model)
    assert (one.lanes, two.lanes) == (1, 2)
    threads_before = threading.active_count()
    laned = two.bind(structures)
    assert [len(part.cells) for part in laned.parts] == [2, 2]
    first, again = laned(positions), laned(positions)
    _assert_matches(first, one.bind(structures)(positions))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert laned.rebuilds.tolist() == [1, 1, 1, 1]
    del laned  # its lane thread ends with it (ThreadPoolExecutor's collection callback)
    deadline = time.monotonic() + 10
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    assert threading.active_count() <= threads_before  # (an earlier test's lane may still have been ending)


# ------------------------------------------------------------------------------ integrator
def test_integrator_is_ases_langevin(model):
    """Same forces (one calculator per call) and seed: bit-identical to ASE; batched MACE forces:
    equal within float32 rounding for 10 steps."""
    starts = [_cu(20), _cu(21), _cu(22)]
    seeds = [5, 6, 7]
    for potential, tolerance in ((CalculatorPotential(model), 0.0), (MACEPotential(model), 1e-5)):
        md = BatchedLangevin(potential, starts, 600.0, 2.0, 0.02, [stream(s, "langevin") for s in seeds])
        md.run(10)
        for r, (start, seed) in enumerate(zip(starts, seeds)):
            atoms = start.copy()
            atoms.calc = model.calculator()
            langevin(atoms, 600.0, 2.0, 0.02, stream(seed, "langevin")).run(10)
            np.testing.assert_allclose(md.replica(r).positions, atoms.positions, rtol=0, atol=tolerance)
            np.testing.assert_allclose(md.momenta[md.ptr[r]:md.ptr[r + 1]], atoms.get_momenta(),
                                       rtol=0, atol=tolerance * 100)
            assert np.abs(atoms.positions - start.positions).max() > 0.05  # it did move


class _HarmonicWells:
    """Each atom in its own isotropic well k/2 |x - x0|^2 around its start: a canonical
    ensemble known in closed form, at no cost."""

    def __init__(self, k: float):
        self.k = k

    def bind(self, structures):
        centres = np.concatenate([a.positions for a in structures])
        starts = _bounds(structures)[0]

        def energies_and_forces(positions):
            d = positions - centres
            return 0.5 * self.k * np.add.reduceat((d * d).sum(axis=1), starts), -self.k * d

        return energies_and_forces


def _kinetic_temperatures(md: BatchedLangevin) -> np.ndarray:
    """Per replica, 2 KE / (3 N kB): fixcm=False leaves all 3N degrees of freedom."""
    ke = 0.5 * np.add.reduceat((md.momenta ** 2 / md.masses).sum(axis=1), md.ptr[:-1])
    return 2 * ke / (3 * np.diff(md.ptr) * units.kB)


def _canonical_z(temperatures: np.ndarray, target_K: float, n_atoms: int) -> tuple[float, float]:
    """z-scores of the sample mean and variance of kinetic temperatures against the canonical
    mean T and variance 2 T^2 / (3N) (KE is Gamma(3N/2) distributed, excess kurtosis 4/N)."""
    n = temperatures.size
    variance = 2 * target_K**2 / (3 * n_atoms)
    z_mean = (temperatures.mean() - target_K) / np.sqrt(variance / n)
    z_var = (temperatures.var(ddof=1) / variance - 1) / np.sqrt(2 / (n - 1) + 4 / n_atoms / n)
    return float(z_mean), float(z_var)


def _sample_temperatures(temperature_K: float) -> np.ndarray:
    """64 replicas of 8 Cu atoms in wells with a 200 fs period, friction 0.05/fs: 10/friction of
    equilibration, then one sample every 5/friction (correlation e^-5) per replica."""
    wells = Atoms("Cu8", positions=np.arange(24.0).reshape(8, 3), cell=[30.0] * 3, pbc=True)
    mass = wells.get_masses()[0]
    k = mass * (2 * np.pi / (200 * units.fs)) ** 2
    md = BatchedLangevin(_HarmonicWells(k), [wells] * 64, temperature_K, 2.0, 0.05,
                         [stream(r, "temperature-test") for r in range(64)])
    md.run(100)
    samples = []
    for _ in range(30):
        md.run(50)
        samples.append(_kinetic_temperatures(md))
    return np.concatenate(samples)


def test_kinetic_temperature_is_canonical():
    z_mean, z_var = _canonical_z(_sample_temperatures(500.0), 500.0, 8)
    assert abs(z_mean) < 4 and abs(z_var) < 4, (z_mean, z_var)
    # the check has the power to see a thermostat off by 10% (noise scaled for 550 K)
    z_mean, z_var = _canonical_z(_sample_temperatures(550.0), 500.0, 8)
    assert z_mean > 8, (z_mean, z_var)


# ------------------------------------------------------------------------------ engine
def test_exploding_replica_stops_and_others_go_on(model, model_ref):
    settings = LangevinSettings(**SHORT)
    crushed = _cu(30)
    crushed.positions[1] = crushed.positions[0] + [0.3, 0.0, 0.0]
    good = [_cu(31), _cu(32)]
    results = run_replicas(MACEPotential(model), [good[0], crushed, good[1]], settings, [1, 2, 3])
    alone = run_replicas(MACEPotential(model), good, settings, [1, 3])

    assert results[1] == {"frames": [], "exploded": True, "steps": 2}  # found at the first check
    assert run_replica(model_ref, crushed, settings, seed=2) == results[1]  # as the ASE engine finds it
    for result, reference in zip([results[0], results[2]], alone):
        assert not result["exploded"] and result["steps"] == 6 and len(result["frames"]) == 2
        for frame, same in zip(result["frames"], reference["frames"]):
            np.testing.assert_allclose(frame.positions, same.positions, rtol=0, atol=1e-5)


def test_engines_sample_the_same_replicas_deterministically(model_ref):
    starts = [_cu(40 + i) for i in range(4)]
    runs = {}
    for engine in ("ase", "batched", "batched"):
        settings = LangevinSettings(**SHORT, replicas=3, replicas_per_task=2, engine=engine)
        result = LangevinSampler(settings, cpus_per_task=2).sample(model_ref, starts, n=100, seed=11,
                                                                   executor=LocalExecutor())
        assert result.failures == 0 and len(result.structures) == 6  # 3 replicas x 2 kept frames
        positions = np.stack([a.positions for a in result.structures])
        if engine in runs:
            assert np.array_equal(positions, runs[engine])  # same seed: bit-identical frames
        runs[engine] = positions
    # same start picks and per-replica seeds: the trajectories agree to float32 rounding
    np.testing.assert_allclose(runs["batched"], runs["ase"], rtol=0, atol=1e-5)
