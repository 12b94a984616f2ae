"""MACE's batched energies and forces (the ``batched_forces`` capability): R replicas per call.

Why: a MACE forward and backward on one 32-atom cell is mostly fixed per-call cost (Python,
e3nn, many small kernels); R cells in one graph cost little more than one, so one task that
advances 16 replicas does several times the replica-steps per second of 16 ASE runs
(``benchmarks/bench_sampler.py``). :class:`MACEPotential` computes what ``MACEModel.predict``
computes without building mace ``AtomicData`` every step: one graph per lane, i.e. per core,
and neighbour lists with a skin."""
from __future__ import annotations

# first: it imports mace before e3nn and silences e3nn's import warnings
from collapse_sim.models.mace.preamble import default_dtype, model_call, num_threads  # isort: skip

import copy
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols
from mace.data.neighborhood import get_neighborhood
from mace.tools.utils import atomic_numbers_to_indices

from collapse_sim.models.mace.edge_paths import use_fast_paths
from collapse_sim.models.skin import refresh_candidates
from collapse_sim.runtime import lanes
from collapse_sim.runtime.allocator import keep_heap

#: Å. Candidate pairs are kept within r_max + skin and rebuilt once an atom of the replica moved
#: skin/2. A larger skin means rarer rebuilds but more candidates to filter at every step; at 1 Å
#: a hot 32-atom Cu cell rebuilds only every few tens of steps, while filtering stays about 1 % of
#: a step (docs/performance.md).
DEFAULT_SKIN = 1.0


class MACEPotential:
    """Energies and forces of R replicas from MACE graphs (what ``MACEModel.predict`` computes,
    without building mace ``AtomicData`` every step): one graph per lane
    (``collapse_sim.runtime.lanes``): on CPU with ``threads`` given, the replicas are split into
    ``threads`` contiguous parts, each run on its own core with one intra-op thread."""

    def __init__(self, model, skin: float = DEFAULT_SKIN):
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
    run in parallel on threads kept for the life of this object (starting a thread per call costs
    a measurable share of a step); they end when it is collected."""

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
            with model_call(p.dtype, p.threads):
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
        numbers = np.concatenate([a.numbers for a in structures])
        unknown = sorted(set(numbers.tolist()) - set(potential.z_table.zs))
        if unknown:
            raise ValueError(f"elements {[chemical_symbols[z] for z in unknown]} the model was not trained on")
        species = torch.as_tensor(atomic_numbers_to_indices(numbers, potential.z_table))
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
        p = self.potential

        def build(r: int, replica_positions: np.ndarray):
            edge_index, shifts, _, _ = get_neighborhood(replica_positions, cutoff=p.r_max + p.skin, pbc=self.pbc[r],
                                                        cell=self.cells[r].copy())  # it overwrites the cell
            return edge_index, shifts

        if not refresh_candidates(self.candidates, positions, self.reference, self.ptr, p.skin, self.rebuilds, build):
            return
        self.candidate_index = torch.as_tensor(np.concatenate([c[0] for c in self.candidates], axis=1)).to(p.device)
        self.candidate_shifts = torch.tensor(np.concatenate([c[1] for c in self.candidates]), dtype=p.dtype,
                                             device=p.device)
