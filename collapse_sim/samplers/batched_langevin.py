"""Batched Langevin MD: R independent replicas advanced together, one force call per step.

Why: a MACE forward and backward on one 32-atom cell is mostly fixed per-call cost (Python,
e3nn, many small kernels); R cells in one graph cost little more than one, so one task that
advances 16 replicas does several times the replica-steps per second of 16 ASE runs
(``benchmarks/bench_sampler.py``).

:class:`BatchedLangevin` is ASE's ``Langevin`` with ``fixcm=False`` (``ase/md/langevin.py``)
over replicas whose atoms are concatenated. Each replica draws its Maxwell-Boltzmann momenta,
then ``xi`` and ``eta`` every step, from its own Generator in ASE's order, and the arithmetic is
ASE's (momenta stored, velocities recomputed after the position update), so given the same
forces a replica follows its ASE trajectory (``collapse_sim.systems.md.langevin``) bit for bit.
Forces come from a :class:`BatchedPotential`: :class:`MACEPotential` (one graph per lane,
i.e. per core, neighbour lists with a skin) or :class:`CalculatorPotential` (any model's ASE
calculator, for models without a batched path).

Same seeds, the same chunk of replicas and the same threads give bit-identical frames; which
replicas share a chunk or a lane can change float32 rounding (kernels depend on the batch), not
the statistics."""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Protocol

# first: it imports mace before e3nn and silences e3nn's import warnings
from collapse_sim.models.mace.preamble import default_dtype, deterministic, num_threads  # isort: skip

import numpy as np
import torch
from ase import Atoms, units
from mace.data.neighborhood import get_neighborhood
from mace.tools.utils import atomic_numbers_to_indices

from collapse_sim.models.mace.edge_paths import use_fast_paths
from collapse_sim.models.mace.model import MACEModel
from collapse_sim.runtime import lanes
from collapse_sim.runtime.allocator import keep_heap
from collapse_sim.runtime.executor import torch_threads
from collapse_sim.runtime.rng import stream
from collapse_sim.samplers.base import ModelRef
from collapse_sim.samplers.checks import exploded, segments

#: Å. Candidate pairs are kept within r_max + skin and rebuilt once an atom of the replica moved
#: skin/2. A larger skin means rarer rebuilds but more candidates to filter at every step; at 1 Å
#: a hot 32-atom Cu cell rebuilds only every few tens of steps, while filtering stays about 1 % of
#: a step (docs/performance.md).
DEFAULT_SKIN = 1.0

#: positions (M, 3) of R replicas' atoms, concatenated -> (energies (R,), forces (M, 3))
BatchedForces = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


class BatchedPotential(Protocol):
    def bind(self, structures: Sequence[Atoms]) -> BatchedForces:
        """Forces for these replicas (their numbers, cells and pbc; positions come with each call)."""


# --------------------------------------------------------------------------------------------
# potentials
# --------------------------------------------------------------------------------------------
class MACEPotential:
    """Energies and forces of R replicas from MACE graphs (what ``MACEModel.predict`` computes,
    without building mace ``AtomicData`` every step): one graph per lane
    (``collapse_sim.runtime.lanes``): on CPU with ``threads`` given, the replicas are split into
    ``threads`` contiguous parts, each run on its own core with one intra-op thread."""

    def __init__(self, model: MACEModel, skin: float = DEFAULT_SKIN):
        self.module = copy.deepcopy(model.model).requires_grad_(False)  # autograd w.r.t. positions only
        use_fast_paths(self.module)  # a private copy: never saved
        self.z_table, self.r_max, self.skin = model.z_table, model.r_max, skin
        self.dtype, self.device, self.threads = model._dtype, model._device, model.threads
        self.lanes = lanes.count(self.device.type, self.threads)
        keep_heap()  # every step frees and reallocates the same per-edge tensors

    def bind(self, structures: Sequence[Atoms]) -> _MACEReplicas:
        return _MACEReplicas(self, structures)


class _MACEReplicas:
    """R replicas as one MACE graph per lane; ``rebuilds`` counts each replica's neighbour-list
    builds. With one lane the ops use the model's threads and torch's deterministic algorithms;
    with several, each lane's ops are serial (deterministic without that mode), and the lanes
    run in parallel on threads kept for the life of this object (a new thread per call cost
    ~17 % of a 16-replica step); they end when it is collected."""

    def __init__(self, potential: MACEPotential, structures: Sequence[Atoms]):
        self.potential = potential
        ptr = np.cumsum([0] + [len(a) for a in structures])
        self.parts = [_Graph(potential, [structures[r] for r in part], ptr[part[0]])
                      for part in lanes.split(range(len(structures)), potential.lanes)]
        self._workers = None

    @property
    def rebuilds(self) -> np.ndarray:
        return np.concatenate([part.rebuilds for part in self.parts])

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.potential
        if len(self.parts) == 1:
            with default_dtype(p.dtype), num_threads(p.threads), deterministic():
                return self.parts[0](positions)
        with default_dtype(p.dtype), num_threads(1):
            if self._workers is None:  # made in the one-thread scope: its thread's torch ops are serial too
                self._workers = lanes.Workers(len(self.parts))
            results = self._workers.map(lambda part: part(positions[part.lo:part.hi]), self.parts)
        return np.concatenate([e for e, _ in results]), np.concatenate([f for _, f in results])


class _Graph:
    """Replicas (atoms ``lo:hi`` of all replicas' positions) as one MACE graph. Each replica's
    candidate pairs (within r_max + skin) are rebuilt only once one of its atoms moved more
    than skin/2 since its last rebuild, so every pair now closer than r_max is a candidate; each
    call keeps the candidates closer than r_max (farther edges contribute exactly zero in mace's
    cutoff, and cost as much as the others). Called inside the caller's dtype/thread scope."""

    def __init__(self, potential: MACEPotential, structures: Sequence[Atoms], lo: int):
        self.potential = potential
        self.cells = [np.array(a.cell, dtype=float) for a in structures]
        self.pbc = [tuple(bool(p) for p in a.pbc) for a in structures]
        counts = [len(a) for a in structures]
        self.ptr = np.cumsum([0] + counts)
        self.lo, self.hi = int(lo), int(lo + self.ptr[-1])
        species = torch.as_tensor(atomic_numbers_to_indices(np.concatenate([a.numbers for a in structures]),
                                                            potential.z_table))
        device, dtype = potential.device, potential.dtype
        self.graph = {  # the inputs ScaleShiftMACE.forward reads that do not change between steps
            "node_attrs": torch.nn.functional.one_hot(species, len(potential.z_table)).to(device, dtype),
            "batch": torch.repeat_interleave(torch.arange(len(counts)), torch.as_tensor(counts)).to(device),
            "ptr": torch.as_tensor(self.ptr).to(device),
            "head": torch.zeros(len(counts), dtype=torch.long, device=device),
            "cell": torch.tensor(np.concatenate(self.cells), dtype=dtype, device=device),  # (3R, 3) like a Batch
        }
        self.reference = np.full((self.ptr[-1], 3), np.inf)  # at each replica's last rebuild; inf: none yet
        self.candidates: list[tuple[np.ndarray, np.ndarray]] = [None] * len(counts)
        self.rebuilds = np.zeros(len(counts), dtype=int)

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(energies, forces) at ``positions`` (this graph's atoms)."""
        self._refresh_candidates(positions)
        p = self.potential
        pos = torch.tensor(positions, dtype=p.dtype, device=p.device)
        with torch.no_grad():
            sender, receiver = self.candidate_index
            lengths = torch.linalg.vector_norm(pos[receiver] - pos[sender] + self.candidate_shifts, dim=-1)
            within = lengths < p.r_max  # as mace's cutoff compares the same float32 lengths
        out = p.module({**self.graph, "positions": pos, "edge_index": self.candidate_index[:, within],
                        "shifts": self.candidate_shifts[within]}, training=False, compute_force=True)
        return out["energy"].detach().cpu().double().numpy(), out["forces"].detach().cpu().double().numpy()

    def _refresh_candidates(self, positions: np.ndarray) -> None:
        starts = self.ptr[:-1]
        moved = np.maximum.reduceat(((positions - self.reference) ** 2).sum(axis=1), starts)
        finite = np.logical_and.reduceat(np.isfinite(positions).all(axis=1), starts)  # exploded ones keep theirs
        stale = np.flatnonzero((moved > (self.potential.skin / 2) ** 2) & finite)
        if stale.size == 0:
            return
        p = self.potential
        for r in stale:
            lo, hi = self.ptr[r], self.ptr[r + 1]
            edge_index, shifts, _, _ = get_neighborhood(positions[lo:hi], cutoff=p.r_max + p.skin, pbc=self.pbc[r],
                                                        cell=self.cells[r].copy())  # it overwrites the cell
            self.candidates[r] = (edge_index + lo, shifts)
            self.reference[lo:hi] = positions[lo:hi]
            self.rebuilds[r] += 1
        self.candidate_index = torch.as_tensor(np.concatenate([c[0] for c in self.candidates], axis=1)).to(p.device)
        self.candidate_shifts = torch.tensor(np.concatenate([c[1] for c in self.candidates]), dtype=p.dtype,
                                             device=p.device)


class CalculatorPotential:
    """Any model's ASE calculator, replica after replica: the batched engine for models without a
    batched force path, and the integrator's test against ASE with identical forces."""

    def __init__(self, model):
        self.model = model

    def bind(self, structures: Sequence[Atoms]) -> BatchedForces:
        calc = self.model.calculator()
        replicas = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in structures]
        ptr = np.cumsum([0] + [len(a) for a in replicas])

        def energies_and_forces(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            for atoms, lo, hi in zip(replicas, ptr[:-1], ptr[1:]):
                atoms.positions = positions[lo:hi]
            return (np.array([calc.get_potential_energy(a) for a in replicas]),
                    np.concatenate([calc.get_forces(a) for a in replicas]))

        return energies_and_forces


def batched_potential(model) -> BatchedPotential:
    return MACEPotential(model) if isinstance(model, MACEModel) else CalculatorPotential(model)


# --------------------------------------------------------------------------------------------
# integrator
# --------------------------------------------------------------------------------------------
class BatchedLangevin:
    """ASE's Langevin (``fixcm=False``) over R replicas. ``positions``, ``momenta`` and ``forces``
    are (M, 3), replica r's atoms at rows ``ptr[r]:ptr[r + 1]``; ``energies`` is (R,); ``evaluate``
    is the potential bound to the replicas.
    ``temperature_K``, ``timestep_fs`` and ``friction`` (1/fs) as ``collapse_sim.systems.md.langevin``."""

    def __init__(self, potential: BatchedPotential, structures: Sequence[Atoms], temperature_K: float,
                 timestep_fs: float, friction: float, rngs: Sequence[np.random.Generator]):
        if len(structures) != len(rngs) or not structures:
            raise ValueError(f"need one Generator per replica and at least one replica, got "
                             f"{len(structures)} structures and {len(rngs)} Generators")
        self.potential = potential
        self.structures = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in structures]
        self.rngs = list(rngs)
        self.dt = timestep_fs * units.fs
        self.temperature = units.kB * temperature_K  # eV
        self.friction = friction / units.fs
        self._layout()
        self.positions = np.concatenate([a.positions for a in self.structures])
        # Maxwell-Boltzmann as ase.md.velocitydistribution._maxwellboltzmanndistribution draws it
        self.momenta = self._standard_normal() * np.sqrt(self.masses * self.temperature)
        self.energies, self.forces = self.evaluate(self.positions)

    def _layout(self) -> None:
        """Per-atom arrays from ``structures``; the coefficients are ASE's ``Langevin.updatevars``."""
        self.ptr = np.cumsum([0] + [len(a) for a in self.structures])
        self.masses = np.concatenate([a.get_masses() for a in self.structures])[:, None]
        dt, fr = self.dt, self.friction
        sigma = np.sqrt(2 * self.temperature * fr / self.masses)
        self.c1 = dt / 2.0 - dt * dt * fr / 8.0
        self.c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
        self.c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
        self.c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
        self.c4 = fr / 2.0 * self.c5
        self.evaluate = self.potential.bind(self.structures)

    def _standard_normal(self) -> np.ndarray:
        """(M, 3) normals; replica r's block from its own Generator, as ASE draws (n_r, 3)."""
        out = np.empty((self.ptr[-1], 3))
        for rng, lo, hi in zip(self.rngs, self.ptr[:-1], self.ptr[1:]):
            rng.standard_normal(out=out[lo:hi])
        return out

    def step(self) -> None:
        """``ase.md.langevin.Langevin.step`` (fixcm=False, no constraints), operation for operation."""
        xi = self._standard_normal()
        eta = self._standard_normal()
        rnd_pos = self.c5 * eta
        rnd_vel = self.c3 * xi - self.c4 * eta
        v = self.momenta / self.masses
        v += self.c1 * self.forces / self.masses - self.c2 * v + rnd_vel
        x = self.positions
        self.positions = x + self.dt * v + rnd_pos
        v = (self.positions - x - rnd_pos) / self.dt
        self.energies, self.forces = self.evaluate(self.positions)
        v += self.c1 * self.forces / self.masses - self.c2 * v + rnd_vel
        self.momenta = v * self.masses

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def replica(self, r: int) -> Atoms:
        """Replica r now, as a new Atoms (numbers, positions, cell, pbc)."""
        a, lo, hi = self.structures[r], self.ptr[r], self.ptr[r + 1]
        return Atoms(a.numbers, self.positions[lo:hi].copy(), cell=a.cell.copy(), pbc=a.pbc)

    def replica_forces(self, r: int) -> np.ndarray:
        return self.forces[self.ptr[r]:self.ptr[r + 1]]

    def keep(self, replicas: np.ndarray) -> None:
        """Continue with the replicas where ``replicas`` (bool, R) is True; the others stop."""
        atoms = np.repeat(replicas, np.diff(self.ptr))
        self.structures = [a for a, k in zip(self.structures, replicas) if k]
        self.rngs = [g for g, k in zip(self.rngs, replicas) if k]
        self.positions, self.momenta, self.forces = self.positions[atoms], self.momenta[atoms], self.forces[atoms]
        self.energies = self.energies[replicas]
        self._layout()


# --------------------------------------------------------------------------------------------
# the batched engine
# --------------------------------------------------------------------------------------------
def run_replicas(potential: BatchedPotential, starts: Sequence[Atoms], settings, seeds: Sequence[int]) -> list[dict]:
    """``run_replica`` for many replicas at once: the same seeds' random streams, checks and
    frames, one result {'frames', 'exploded', 'steps'} per start. An exploded replica stops at
    the check that finds it; the others go on."""
    if not starts:
        return []
    md = BatchedLangevin(potential, starts, settings.temperature_K, settings.timestep_fs, settings.friction,
                         [stream(seed, "langevin") for seed in seeds])
    results = [{"frames": [], "exploded": False, "steps": 0} for _ in starts]
    running = list(range(len(starts)))  # the result index of each replica md still advances
    for n, keep in segments(settings):
        md.run(n)
        healthy = np.ones(len(running), dtype=bool)
        for k, r in enumerate(running):
            results[r]["steps"] += n
            atoms = md.replica(k)
            if exploded(atoms, md.replica_forces(k), md.energies[k], settings):
                results[r]["exploded"], healthy[k] = True, False
            elif keep:
                results[r]["frames"].append(atoms)
        if not healthy.all():
            running = [r for r, h in zip(running, healthy) if h]
            if not running:
                break
            md.keep(healthy)
    return results


def run_replica_chunk(model_ref: ModelRef, starts: Sequence[Atoms], settings, seeds: Sequence[int],
                      cpus: float = 1) -> list[dict]:
    """The batched engine's task: the model loaded for ``cpus`` torch threads, ``run_replicas``."""
    from collapse_sim import models

    model = models.load(model_ref.settings, model_ref.path, threads=torch_threads(cpus))
    return run_replicas(batched_potential(model), starts, settings, seeds)
