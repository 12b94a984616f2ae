"""ANI's batched energies and forces (the ``batched_forces`` capability): R replicas per call.

The replicas are one :class:`~collapse_sim.models.ani.network.Batch`, as ``predict`` batches
structures: each replica's neighbour list (periodic images included, any cell, periodic or
not, any size) is its own, concatenated, so pairs never cross replicas and one torchani call
evaluates them all. The lists hold candidate pairs within the radial cutoff + ``skin`` and
are rebuilt for a replica once one of its atoms moved skin/2; each call keeps the pairs
closer than the cutoff, the pairs ``predict`` would list."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from collapse_sim.models.ani.network import Batch, evaluate, half_pairs, species_indices
from collapse_sim.models.skin import refresh_candidates
from collapse_sim.runtime.allocator import keep_heap
from collapse_sim.runtime.torch_state import model_call

#: Å: as MACE's (``collapse_sim.models.mace.batched.DEFAULT_SKIN``)
DEFAULT_SKIN = 1.0


class ANIPotential:
    """Energies and forces of R replicas from one copy of an :class:`ANIModel`'s network."""

    def __init__(self, model, skin: float = DEFAULT_SKIN):
        self.network = copy.deepcopy(model.network).requires_grad_(False).eval()  # gradients w.r.t. positions only
        self.dtype, self.device, self.threads, self.skin = model._dtype, model._device, model.threads, skin
        keep_heap()  # every step frees and reallocates the same per-pair tensors

    def bind(self, structures: Sequence[Atoms]) -> _ANIReplicas:
        return _ANIReplicas(self, structures)


class _ANIReplicas:
    """R replicas as one batch; ``rebuilds`` counts each replica's neighbour-list builds."""

    def __init__(self, potential: ANIPotential, structures: Sequence[Atoms]):
        self.potential = p = potential
        self.replicas = [Atoms(a.numbers, a.positions, cell=a.cell, pbc=a.pbc) for a in structures]
        counts = np.array([len(a) for a in self.replicas])
        self.ptr = np.concatenate([[0], np.cumsum(counts)])
        species = np.concatenate(species_indices(p.network, self.replicas))
        self.species = torch.as_tensor(species, dtype=torch.long, device=p.device)
        self.structure = torch.as_tensor(np.repeat(np.arange(len(counts)), counts), dtype=torch.long,
                                         device=p.device)
        self.n_atoms = torch.as_tensor(counts, dtype=p.dtype, device=p.device)
        self.reference = np.full((self.ptr[-1], 3), np.inf)  # at each replica's last rebuild; inf: none yet
        self.candidates: list[tuple[np.ndarray, np.ndarray]] = [None] * len(counts)
        self.rebuilds = np.zeros(len(counts), dtype=int)

    def __call__(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.potential
        with model_call(p.dtype, p.threads):
            self._refresh_candidates(positions)
            pos = torch.as_tensor(positions, dtype=p.dtype, device=p.device)
            i, j = self.pairs
            with torch.no_grad():
                within = (pos[i] - pos[j] + self.shifts).norm(2, -1) < p.network.cutoff
            batch = Batch(n=len(self.replicas), species=self.species, positions=pos, structure=self.structure,
                          pairs=self.pairs[:, within], shifts=self.shifts[within], n_atoms=self.n_atoms,
                          volumes=self.n_atoms.new_zeros(len(self.replicas)))
            energies, forces, _ = evaluate(p.network, batch)
            return energies.detach().double().cpu().numpy(), forces.detach().double().cpu().numpy()

    def _refresh_candidates(self, positions: np.ndarray) -> None:
        p = self.potential

        def build(r: int, replica_positions: np.ndarray):
            atoms = self.replicas[r]
            atoms.positions = replica_positions
            return half_pairs(atoms, p.network.cutoff + p.skin)

        if not refresh_candidates(self.candidates, positions, self.reference, self.ptr, p.skin, self.rebuilds, build):
            return
        self.pairs = torch.as_tensor(np.concatenate([c[0] for c in self.candidates], axis=1), dtype=torch.long,
                                     device=p.device)
        self.shifts = torch.as_tensor(np.concatenate([c[1] for c in self.candidates]), dtype=p.dtype,
                                      device=p.device)
