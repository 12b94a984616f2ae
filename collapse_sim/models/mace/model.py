"""MACE potential behind the :class:`~collapse_sim.models.base.Model` protocol.

Everything is built through the mace-torch Python API (no CLI, no files in between):

* graphs: ``mace.data.config_from_atoms`` + ``AtomicData.from_config``, built once per dataset;
* model: ``mace.modules.ScaleShiftMACE`` configured as ``mace_run_train --model MACE`` does it
  (first layer ``RealAgnosticInteractionBlock``, later ones ``RealAgnosticResidualInteractionBlock``,
  E0s by least squares on the training split, ``avg_num_neighbors`` and the scale from the data);
* training: mace's ``WeightedEnergyForcesLoss`` (``...StressLoss`` when ``stress_weight > 0``),
  Adam(amsgrad) with mace's parameter groups / weight decay, ``ReduceLROnPlateau``, gradient
  clipping, EMA, keeping the weights with the best validation loss. With the same seed it starts
  from the same weights and sees the same batches in the same order as ``mace_run_train`` (its
  validation errors match the CLI's epoch by epoch); it is faster because graphs are collated
  once and batches gathered by index, and on CPU each batch is split over ``threads`` cores
  (one part per core, one thread per op) instead of splitting every small op over the cores
  (``benchmarks/bench_train.py``).

The saved file is the pickled ``torch.nn.Module`` (exactly what ``mace_run_train`` writes), so
``MACECalculator(model_paths=...)`` loads it directly.
"""
from __future__ import annotations

# first: it imports mace before e3nn and silences e3nn's import warnings
from collapse_sim.models.mace.preamble import (DTYPES, check_threads, deterministic, frozen,  # isort: skip
                                               model_call, num_threads, torch_device)

import contextlib
import copy
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import full_3x3_to_voigt_6_stress
from e3nn import o3
from mace import modules
from mace.calculators import MACECalculator
from mace.tools import AtomicNumberTable, torch_geometric
from mace.tools.scatter import scatter_mean

from collapse_sim.data.structures import attach_labels
from collapse_sim.models.base import BATCHED_FORCES, FEATURES, TRAINABLE
from collapse_sim.models.mace import MACESettings, training
from collapse_sim.models.mace.graphs import PREDICT_BATCH, has_stress, to_graphs
from collapse_sim.runtime.torch_state import state_dict_fingerprint


class _ReproducibleMACECalculator(MACECalculator):
    """MACECalculator whose calculations run deterministically (and with a fixed thread count if given)."""

    def __init__(self, *args, threads: int | None = None, **kwargs):
        self._cs_threads = threads
        super().__init__(*args, **kwargs)

    def calculate(self, *args, **kwargs):
        with num_threads(self._cs_threads), deterministic():
            return super().calculate(*args, **kwargs)


class MACEModel:
    """A MACE potential. ``self.model`` is the ``ScaleShiftMACE`` module once fitted or loaded.

    Elements it was not fitted with (neither in ``train`` nor in ``species``): predict, embed and
    the batched potential raise ValueError naming them."""

    capabilities = frozenset({TRAINABLE, FEATURES, BATCHED_FORCES})

    def __init__(self, settings: MACESettings, threads: int | None = None):
        self.settings = settings
        self.threads = check_threads(threads)
        self.model: modules.ScaleShiftMACE | None = None
        self.z_table: AtomicNumberTable | None = None
        self.fit_info: dict = {}
        self.history: list[dict] = []

    # ---------------------------------------------------------------- helpers
    @property
    def _device(self) -> torch.device:
        return torch_device(self.settings.device)

    @property
    def _dtype(self) -> torch.dtype:
        if self.model is not None:
            return next(self.model.parameters()).dtype
        return DTYPES[self.settings.dtype]

    @property
    def r_max(self) -> float:
        self._require_model()
        return float(self.model.r_max)

    def _require_model(self) -> None:
        if self.model is None:
            raise RuntimeError("MACEModel has no weights yet: call fit() or load() first")

    def _heads(self) -> list[str]:
        return list(getattr(self.model, "heads", ["Default"]))

    # ---------------------------------------------------------------- protocol
    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> MACEModel:
        """Train a fresh model on ``train`` (labelled structures); returns ``self``.

        The model has an embedding for every element of ``train`` and of ``species`` (the
        system's elements): a generation whose training set lost an element (a policy that
        trains on model samples of a few molecules) still predicts structures with it, with an
        untrained embedding and E0 = 0 for it (the least-squares E0 of an absent element) —
        the forgetting shows in the probe errors instead of ending the run.

        Same procedure as ``mace_run_train`` with the same settings and seed: the same train/valid
        split (``np.random.default_rng(seed)``), the same initial weights (``torch.manual_seed(seed)``
        right before the model is built), the same batches in the same order (a torch DataLoader
        over the training indices, shuffled by ``torch.Generator().manual_seed(seed)``, incomplete
        last batch dropped, read once for ``avg_num_neighbors`` and once for the scale before the
        first epoch), Adam(amsgrad) with mace's parameter groups, ReduceLROnPlateau on the
        validation loss, gradient clipping, EMA, and at the end the EMA weights of the epoch with
        the lowest validation loss. Only float rounding differs (summation order): with mace-torch
        0.3.16 the validation errors match the CLI's log epoch by epoch. One deliberate difference:
        the validation loss is mace's loss over the whole validation set, where the CLI sums the
        means of its ``--valid_batch_size`` batches and divides by the number of structures (the
        same up to a constant factor when the set fits in one batch).

        Fast paths (tests compare them with the reference paths): the neighbour lists are built
        once, graphs are collated once and batches gathered by index (``graphs.Packed``), and with
        ``threads`` on CPU each batch is split into ``threads`` parts computed in parallel
        (``collapse_sim.runtime.lanes``, ``training.part_loss``), validation too.

        Deterministic: the same seed, data, dtype and ``threads`` give bit-identical weights
        (different ``threads`` differ in the last bits: the parts differ). The caller's RNG state,
        default dtype, thread count and deterministic-algorithms mode are restored afterwards.
        """
        self.model, self.z_table, self.fit_info, self.history = training.fit(
            self.settings, self.threads, train, seed, log_path, species)
        return self

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies (energy eV, forces eV/Å, stress eV/Å³ in ASE Voigt order if periodic)."""
        self._require_model()
        structures = list(structures)
        if not structures:
            return []
        device = self._device
        need_stress = [has_stress(a) for a in structures]
        out_atoms: list[Atoms] = []
        with model_call(self._dtype, self.threads):
            graphs = to_graphs(structures, self.z_table, self.r_max, self._heads(), labels=False)
            loader = torch_geometric.DataLoader(graphs, batch_size=PREDICT_BATCH, shuffle=False, drop_last=False)
            offset = 0
            with frozen(self.model):
                for batch in loader:
                    batch = batch.to(device)
                    k = batch.num_graphs
                    stress = any(need_stress[offset:offset + k])
                    out = self.model(batch.to_dict(), training=False, compute_force=True, compute_stress=stress)
                    energies = out["energy"].detach().cpu().double().numpy()
                    forces = out["forces"].detach().cpu().double().numpy()
                    stresses = out["stress"].detach().cpu().double().numpy() if stress else None
                    ptr = batch.ptr.cpu().numpy()
                    for j in range(k):
                        atoms = structures[offset + j]
                        voigt = full_3x3_to_voigt_6_stress(stresses[j]) if need_stress[offset + j] else None
                        out_atoms.append(attach_labels(atoms, energies[j], forces[ptr[j]:ptr[j + 1]], voigt))
                    offset += k
        return out_atoms

    def _invariant_columns(self) -> torch.Tensor:
        """Column indices of the 0e channels of every layer inside ``output['node_feats']``."""
        cols, offset = [], 0
        for product in self.model.products:
            irreps = o3.Irreps(str(product.linear.irreps_out))
            for (_mul, ir), sl in zip(irreps, irreps.slices()):
                if ir == o3.Irrep(0, 1):
                    cols.extend(range(offset + sl.start, offset + sl.stop))
            offset += irreps.dim
        return torch.tensor(cols, dtype=torch.long)

    @property
    def embedding_dim(self) -> int:
        self._require_model()
        return int(self._invariant_columns().numel())

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, p): per-structure mean over atoms of the invariant (0e) node features of every layer."""
        self._require_model()
        structures = list(structures)
        cols = self._invariant_columns()
        if not structures:
            return np.zeros((0, cols.numel()))
        device = self._device
        chunks = []
        with model_call(self._dtype, self.threads):
            graphs = to_graphs(structures, self.z_table, self.r_max, self._heads(), labels=False)
            loader = torch_geometric.DataLoader(graphs, batch_size=PREDICT_BATCH, shuffle=False, drop_last=False)
            with frozen(self.model), torch.no_grad():
                for batch in loader:
                    batch = batch.to(device)
                    out = self.model(batch.to_dict(), training=False, compute_force=False)
                    feats = out["node_feats"][:, cols.to(device)]
                    pooled = scatter_mean(feats, batch.batch, dim=0, dim_size=batch.num_graphs)
                    chunks.append(pooled.detach().cpu().double().numpy())
        return np.concatenate(chunks, axis=0)

    def calculator(self) -> Calculator:
        """A MACECalculator (subclass) on a private copy of the in-memory model (the calculator
        freezes and may cast its models); each calculation runs with torch deterministic algorithms
        and, if ``threads`` was given, that many torch threads."""
        self._require_model()
        return _ReproducibleMACECalculator(
            models=copy.deepcopy(self.model), device=self.settings.device,
            default_dtype=str(self._dtype).removeprefix("torch."), threads=self.threads)

    def batched_potential(self, skin: float | None = None):
        """Energies and forces of many replicas per call (``collapse_sim.models.mace.batched``):
        neighbour candidates within r_max + ``skin`` Å (default ``batched.DEFAULT_SKIN``)."""
        from collapse_sim.models.mace import batched

        self._require_model()
        return batched.MACEPotential(self, batched.DEFAULT_SKIN if skin is None else skin)

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits of the state dict (names, dtypes, shapes, bytes, in name order).

        Identical for identical weights whatever process trained or saved them (file bytes are not)."""
        self._require_model()
        return state_dict_fingerprint(self.model)

    def save(self, path: Path) -> None:
        """torch.save of the whole module (what mace_run_train writes), atomically."""
        self._require_model()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        module = self.model
        if next(module.parameters()).device.type != "cpu":
            module = copy.deepcopy(module).to("cpu")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                torch.save(module, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path: Path, settings: MACESettings, threads: int | None = None) -> MACEModel:
        obj = cls(settings, threads=threads)
        # weights_only=False: the file is a pickled nn.Module that we wrote ourselves
        module = torch.load(Path(path), map_location=obj._device, weights_only=False)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"{path} does not hold a torch module")
        module = module.to(DTYPES[settings.dtype])
        module.eval()
        obj.model = module
        obj.z_table = AtomicNumberTable([int(z) for z in module.atomic_numbers])
        return obj
