"""The ANI network and its inputs.

:class:`ANINetwork` is torchani's ``AEVComputer`` and ``ANINetworks`` (one ``AtomicNetwork``
per element) plus per-element reference energies E0. It does not use torchani's own
neighbour lists: those take one cell per batch, and a batch here mixes molecules and
periodic cells of different shapes. Instead each structure's neighbour list (ASE's, periodic
images included) is built once (:func:`pack`), the structures of a batch are concatenated
into one "molecule" whose pairs never cross structures, and the pair vectors are recomputed
from the positions in torch, so forces (and, through a strain, stress) come from autograd.
"""
from __future__ import annotations

import warnings

# torchani warns on import that its optional compiled extensions (cuAEV, cell lists) are absent;
# the pure-torch paths used here need none of them, and the notice would flood every worker's log
warnings.filterwarnings("ignore", message="The extensions: .* are not installed")

from collections.abc import Sequence
from dataclasses import dataclass

import ase.data
import numpy as np
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list
from torchani.aev import AEVComputer, ANIAngular, ANIRadial
from torchani.neighbors import Neighbors
from torchani.nn import ANINetworks

from collapse_sim.data.structures import energy_of, forces_of
from collapse_sim.models.base import periodic

#: structures per forward pass when predicting or embedding
PREDICT_BATCH = 32
_ACTIVATIONS = {"gelu": "gelu", "celu": "celu", "silu": torch.nn.SiLU, "tanh": torch.nn.Tanh}


def architecture(settings) -> dict:
    """What the saved file records to rebuild the network without the settings."""
    keys = ("radial_cutoff", "angular_cutoff", "radial_start", "angular_start", "radial_shells", "angular_shells",
            "angular_sections", "radial_eta", "angular_eta", "angular_zeta", "hidden", "activation", "bias")
    return {k: (list(v) if isinstance(v := getattr(settings, k), list) else v) for k in keys}


class ANINetwork(torch.nn.Module):
    """E(structure) = sum over atoms of ANINetworks(AEV)[atom] + E0[element of atom]."""

    def __init__(self, symbols: Sequence[str], arch: dict):
        super().__init__()
        self.symbols = list(symbols)
        self.arch = dict(arch)
        a = self.arch
        self.aev = AEVComputer(
            radial=ANIRadial.cover_linearly(start=a["radial_start"], cutoff=a["radial_cutoff"], eta=a["radial_eta"],
                                            num_shifts=a["radial_shells"], cutoff_fn="cosine"),
            angular=ANIAngular.cover_linearly(start=a["angular_start"], cutoff=a["angular_cutoff"],
                                              eta=a["angular_eta"], zeta=a["angular_zeta"],
                                              num_shifts=a["angular_shells"], num_sections=a["angular_sections"],
                                              cutoff_fn="cosine"),
            num_species=len(self.symbols), strategy="pyaev")
        activation = _ACTIVATIONS[a["activation"]]
        self.networks = ANINetworks.build(
            self.symbols, in_dim=self.aev.out_dim, dims={}, default_dims=tuple(a["hidden"]),
            activation=activation if isinstance(activation, str) else activation(), bias=a["bias"])
        self.register_buffer("e0", torch.zeros(len(self.symbols)))
        index = torch.full((len(ase.data.chemical_symbols),), -1, dtype=torch.long)
        index[[ase.data.atomic_numbers[s] for s in self.symbols]] = torch.arange(len(self.symbols))
        self.register_buffer("element_index", index, persistent=False)

    @property
    def cutoff(self) -> float:
        return float(self.arch["radial_cutoff"])

    @property
    def embedding_dim(self) -> int:
        return int(self.arch["hidden"][-1])

    def pair_vectors(self, batch: Batch, positions: torch.Tensor, strain: torch.Tensor | None) -> Neighbors:
        """torchani's half neighbour list with vectors from ``positions`` (autograd flows through);
        ``strain`` (n_structures, 3, 3) deforms every vector of a structure: r -> r (1 + strain)."""
        i, j = batch.pairs
        diff = positions.index_select(0, i) - positions.index_select(0, j) + batch.shifts
        if strain is not None:
            diff = diff + torch.einsum("pa,pab->pb", diff, strain.index_select(0, batch.structure[i]))
        return Neighbors(batch.pairs, diff.norm(2, -1), diff)

    def aevs(self, batch: Batch, positions: torch.Tensor, strain: torch.Tensor | None = None) -> torch.Tensor:
        """(atoms, aev_dim): the atomic environment vectors of the batch's atoms."""
        neighbors = self.pair_vectors(batch, positions, strain)
        return self.aev.compute_from_neighbors(batch.species.view(1, -1), positions.view(1, -1, 3),
                                               neighbors).view(positions.shape[0], -1)

    def energies(self, batch: Batch, positions: torch.Tensor, strain: torch.Tensor | None = None) -> torch.Tensor:
        """(n_structures,): total energies."""
        aevs = self.aevs(batch, positions, strain)
        atomic = self.networks(batch.species.view(1, -1), aevs.unsqueeze(0), atomic=True).view(-1)
        atomic = atomic + self.e0.index_select(0, batch.species)
        return atomic.new_zeros(batch.n).index_add(0, batch.structure, atomic)

    def features(self, batch: Batch, positions: torch.Tensor) -> torch.Tensor:
        """(atoms, hidden[-1]): each atom's last hidden layer (the input of its element's readout)."""
        aevs = self.aevs(batch, positions)
        out = aevs.new_zeros((aevs.shape[0], self.embedding_dim))
        for k, network in enumerate(self.networks.atomics.values()):
            selected = (batch.species == k).nonzero().view(-1)
            if selected.numel():
                x = aevs.index_select(0, selected)
                for layer in network.layers:
                    x = network.activation(layer(x))
                out.index_copy_(0, selected, x)
        return out


@dataclass
class Batch:
    """Structures concatenated: ``species`` (atoms,) element indices, ``positions`` (atoms, 3),
    ``structure`` (atoms,) which structure an atom belongs to, ``pairs`` (2, pairs) half
    neighbour list into the batch's atoms, ``shifts`` (pairs, 3) periodic-image offsets
    (torchani's convention: vector = r_i - r_j + shift), labels if packed with labels."""

    n: int
    species: torch.Tensor
    positions: torch.Tensor
    structure: torch.Tensor
    pairs: torch.Tensor
    shifts: torch.Tensor
    n_atoms: torch.Tensor
    volumes: torch.Tensor
    energies: torch.Tensor | None = None
    forces: torch.Tensor | None = None


def species_indices(network: ANINetwork, structures: Sequence[Atoms]) -> list[np.ndarray]:
    """Element indices of each structure; ValueError naming elements the network has no MLP for."""
    index = network.element_index.cpu().numpy()
    out = []
    for k, atoms in enumerate(structures):
        idx = index[atoms.numbers]
        if (idx < 0).any():
            names = sorted({ase.data.chemical_symbols[z] for z in atoms.numbers[idx < 0]})
            raise ValueError(f"structure {k} has elements {names} the model was not trained on "
                             f"(it knows {' '.join(network.symbols)})")
        out.append(idx)
    return out


def half_pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (2, p), shift vectors (p, 3)): each neighbour pair once, periodic images included,
    in torchani's convention (r_i - r_j + shift is the vector from j's image to i)."""
    if len(atoms) == 0:
        return np.zeros((2, 0), dtype=np.int64), np.zeros((0, 3))
    i, j, S = neighbor_list("ijS", atoms, cutoff)
    # ASE lists (i, j, S) and (j, i, -S); keep i < j, and for an atom's own images the S > 0 half
    first = np.where(S[:, 0] != 0, S[:, 0], np.where(S[:, 1] != 0, S[:, 1], S[:, 2]))
    keep = (i < j) | ((i == j) & (first > 0))
    i, j, S = i[keep], j[keep], S[keep]
    return np.stack([i, j]).astype(np.int64), -(S @ atoms.cell.array)


@dataclass
class Packed:
    """A dataset with its neighbour lists, built once; :meth:`batch` gathers any subset."""

    species: list[np.ndarray]
    positions: list[np.ndarray]
    pairs: list[np.ndarray]
    shifts: list[np.ndarray]
    volumes: list[float]
    energies: list[float] | None
    forces: list[np.ndarray] | None

    @property
    def n(self) -> int:
        return len(self.species)

    def batch(self, idx: Sequence[int], dtype: torch.dtype, device: torch.device) -> Batch:
        idx = [int(k) for k in idx]
        sizes = np.array([len(self.species[k]) for k in idx])
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        pairs = np.concatenate([self.pairs[k] + o for k, o in zip(idx, offsets)], axis=1)

        def t(array, type_=dtype):
            return torch.as_tensor(np.asarray(array), dtype=type_, device=device)

        return Batch(
            n=len(idx),
            species=t(np.concatenate([self.species[k] for k in idx]), torch.long),
            positions=t(np.concatenate([self.positions[k] for k in idx])),
            structure=t(np.repeat(np.arange(len(idx)), sizes), torch.long),
            pairs=t(pairs, torch.long),
            shifts=t(np.concatenate([self.shifts[k] for k in idx])),
            n_atoms=t(sizes),
            volumes=t([self.volumes[k] for k in idx]),
            energies=t([self.energies[k] for k in idx]) if self.energies is not None else None,
            forces=t(np.concatenate([self.forces[k] for k in idx])) if self.forces is not None else None,
        )


def pack(network: ANINetwork, structures: Sequence[Atoms], labels: bool) -> Packed:
    structures = list(structures)
    if labels:
        for atoms in structures:
            results = getattr(atoms.calc, "results", None) or {}
            if "energy" not in results or "forces" not in results:
                raise ValueError("training structures need energy and forces labels (use attach_labels)")
    neighbours = [half_pairs(a, network.cutoff) for a in structures]
    return Packed(
        species=species_indices(network, structures),
        positions=[np.asarray(a.positions, dtype=float) for a in structures],
        pairs=[p for p, _ in neighbours],
        shifts=[s for _, s in neighbours],
        volumes=[float(a.get_volume()) if periodic(a) else 0.0 for a in structures],
        energies=[energy_of(a) for a in structures] if labels else None,
        forces=[np.asarray(forces_of(a), dtype=float).reshape(-1, 3) for a in structures] if labels else None,
    )


def evaluate(network: ANINetwork, batch: Batch, stress: bool = False, create_graph: bool = False
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(energies (n,), forces (atoms, 3), stress (n, 3, 3) = (1/V) dE/d strain, or None)."""
    positions = batch.positions.detach().requires_grad_(True)
    strain = None
    inputs = [positions]
    if stress:
        strain = torch.zeros((batch.n, 3, 3), dtype=positions.dtype, device=positions.device, requires_grad=True)
        inputs.append(strain)
    with torch.enable_grad():
        energies = network.energies(batch, positions, strain)
        grads = torch.autograd.grad(energies.sum(), inputs, create_graph=create_graph)
    sigma = None
    if stress:
        volumes = batch.volumes.clamp(min=1e-12).view(-1, 1, 1)
        sigma = 0.5 * (grads[1] + grads[1].transpose(1, 2)) / volumes
    return energies, -grads[0], sigma
