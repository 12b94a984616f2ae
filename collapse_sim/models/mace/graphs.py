"""Structures as mace graphs: ``to_graphs`` builds them (neighbour lists once per dataset),
:class:`Packed` collates a dataset once and gathers any batch of it by index."""
from __future__ import annotations

import collapse_sim.models.mace.preamble  # noqa: F401  isort: skip  first: mace before e3nn, warnings silenced

from collections.abc import Sequence

import ase.data
import numpy as np
import torch
from ase import Atoms
from mace import data as mace_data
from mace.tools import AtomicNumberTable, torch_geometric

from collapse_sim.data.structures import energy_of, forces_of

#: graphs per forward pass when predicting, embedding or validating
PREDICT_BATCH = 32
# private keys our labels are copied to before mace's config_from_atoms reads them
_ENERGY_KEY, _FORCES_KEY, _STRESS_KEY = "cs_energy", "cs_forces", "cs_stress"


def has_stress(atoms: Atoms) -> bool:
    return bool(np.any(atoms.pbc)) and abs(float(np.linalg.det(np.asarray(atoms.cell)))) > 1e-12


def to_config(atoms: Atoms, labels: bool) -> mace_data.Configuration:
    """mace Configuration; labels are copied from the SinglePointCalculator to private keys."""
    a = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    keyspec = mace_data.KeySpecification()
    if labels:
        results = getattr(atoms.calc, "results", None) or {}
        if "energy" not in results or "forces" not in results:
            raise ValueError("training structures need energy and forces labels (use attach_labels)")
        a.info[_ENERGY_KEY] = energy_of(atoms)
        a.arrays[_FORCES_KEY] = np.asarray(forces_of(atoms), dtype=float).reshape(len(atoms), 3)
        keyspec.info_keys.update(energy=_ENERGY_KEY, stress=_STRESS_KEY)
        keyspec.arrays_keys.update(forces=_FORCES_KEY)
        if results.get("stress") is not None:
            a.info[_STRESS_KEY] = np.asarray(results["stress"], dtype=float).reshape(-1)
    return mace_data.config_from_atoms(a, key_specification=keyspec)


def to_graphs(structures: Sequence[Atoms], z_table: AtomicNumberTable, r_max: float,
              heads: list[str], labels: bool) -> list[mace_data.AtomicData]:
    known = set(z_table.zs)
    out = []
    for i, atoms in enumerate(structures):
        unknown = set(int(z) for z in atoms.numbers) - known
        if unknown:
            names = sorted(ase.data.chemical_symbols[z] for z in unknown)
            raise ValueError(f"structure {i} has elements {names} the model was not trained on")
        out.append(mace_data.AtomicData.from_config(
            to_config(atoms, labels), z_table=z_table, cutoff=r_max, heads=heads))
    return out


class DictBatch(dict):
    """A collated batch as a plain dict with attribute access and ``num_graphs`` (what mace's
    losses and statistics read from a ``Batch``); ``to_dict()`` is a shallow copy, so the model
    may replace entries of its input without touching the reference labels."""

    __slots__ = ()

    def __getattr__(self, key: str):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    @property
    def num_graphs(self) -> int:
        return int(self["ptr"].numel()) - 1

    def to_dict(self) -> dict:
        return dict(self)


class Packed:
    """Graphs collated once by mace's own ``Batch.from_data_list``; :meth:`batch` gathers any
    sub-batch by index from the packed tensors.

    ``batch(idx)`` holds exactly the tensors of ``Batch.from_data_list([graphs[i] for i in idx])``
    (same keys, dtypes, values, edge indices renumbered; tests compare them), without the per-graph
    Python loop: a few ``index_select`` calls per batch instead of ~20 ops per graph and key.
    """

    def __init__(self, graphs: Sequence[mace_data.AtomicData]):
        full = torch_geometric.Batch.from_data_list(list(graphs))
        self.n = len(graphs)
        ptr = full.ptr
        self.num_nodes = ptr[1:] - ptr[:-1]
        groups: dict[tuple, tuple[torch.Tensor, list]] = {}
        for key in full.keys:
            if key in ("batch", "ptr"):
                continue
            value = full[key]
            slices = full.__slices__[key]
            cat_dim = full.__cat_dims__[key]
            cat_dim = 0 if cat_dim is None else cat_dim % value.dim()
            cumsum = full.__cumsum__[key]
            inc = None
            if any(not isinstance(c, int) or c != 0 for c in cumsum):
                inc = torch.as_tensor(cumsum[:-1], dtype=value.dtype)
                if inc.dim() != 1 or not torch.equal(inc, ptr[:-1].to(value.dtype)):
                    raise ValueError(f"cannot pack key {key!r}: unexpected increments")
            groups.setdefault(tuple(slices), (torch.as_tensor(slices), []))[1].append((key, value, cat_dim, inc))
        self._groups = list(groups.values())

    def batch(self, idx, device: torch.device | None = None) -> DictBatch:
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        num_nodes = self.num_nodes[idx]
        node_offsets = torch.cumsum(num_nodes, 0) - num_nodes  # new first node of each graph
        out = DictBatch()
        for slices, fields in self._groups:
            starts, lengths = slices[idx], slices[idx + 1] - slices[idx]
            total = int(lengths.sum())
            new_starts = torch.cumsum(lengths, 0) - lengths
            rows = torch.repeat_interleave(starts - new_starts, lengths, output_size=total) + torch.arange(total)
            for key, value, cat_dim, inc in fields:
                item = value.index_select(cat_dim, rows)
                if inc is not None:  # edge_index: renumber nodes to the new batch
                    shape = [1] * item.dim()
                    shape[cat_dim] = total
                    shift = torch.repeat_interleave(node_offsets - inc[idx], lengths, output_size=total)
                    item = item + shift.view(shape)
                out[key] = item
        out["batch"] = torch.repeat_interleave(torch.arange(len(idx)), num_nodes, output_size=int(num_nodes.sum()))
        out["ptr"] = torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(num_nodes, 0)])
        if device is not None and device.type != "cpu":
            out = DictBatch({k: v.to(device) for k, v in out.items()})
        return out
