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

import warnings

# e3nn's TorchScript code generation and its constants loader warn on every import/model
# build; they are harmless and would flood every Ray worker's log.
warnings.filterwarnings("ignore", message="The TorchScript type system")
warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")

# ``import mace`` must come before anything imports e3nn: it sets TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.
import mace  # noqa: F401  isort: skip

import contextlib
import copy
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator, Sequence

import ase.data
import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.stress import full_3x3_to_voigt_6_stress
from e3nn import o3
from mace import data as mace_data
from mace import modules
from mace.modules import loss as mace_loss
from mace.calculators import MACECalculator
from mace.tools import AtomicNumberTable, torch_geometric
from mace.tools.scatter import scatter_mean
from collapse_sim.models.settings import MACESettings
from collapse_sim.structures import attach_labels, energy_of, forces_of

__all__ = ["MACESettings", "MACEModel"]

# private keys our labels are copied to before mace's config_from_atoms reads them
_ENERGY_KEY, _FORCES_KEY, _STRESS_KEY = "cs_energy", "cs_forces", "cs_stress"
_PREDICT_BATCH = 32
_DTYPES = {"float32": torch.float32, "float64": torch.float64}


# --------------------------------------------------------------------------------------------
# small context helpers (no global state leaks)
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@contextlib.contextmanager
def _num_threads(threads: int | None) -> Iterator[None]:
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """torch deterministic algorithms for the duration, previous mode restored afterwards.

    Needed for bit-reproducibility with more than one thread: the backward of MACE's gathers
    (``index_put_`` with accumulate, i.e. the force computation) uses parallel atomic adds on CPU
    unless this mode is on. ``warn_only`` so that ops without a deterministic kernel (CUDA) still run.
    """
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])


@contextlib.contextmanager
def _frozen(model: torch.nn.Module) -> Iterator[None]:
    """Parameters without requires_grad (forces still come from autograd on positions)."""
    backup = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in backup:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in backup:
            p.requires_grad_(flag)


class _ReproducibleMACECalculator(MACECalculator):
    """MACECalculator whose calculations run deterministically (and with a fixed thread count if given)."""

    def __init__(self, *args, threads: int | None = None, **kwargs):
        self._cs_threads = threads
        super().__init__(*args, **kwargs)

    def calculate(self, *args, **kwargs):
        with _num_threads(self._cs_threads), _deterministic():
            return super().calculate(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def _has_stress(atoms: Atoms) -> bool:
    return bool(np.any(atoms.pbc)) and abs(float(np.linalg.det(np.asarray(atoms.cell)))) > 1e-12


def _config(atoms: Atoms, labels: bool) -> mace_data.Configuration:
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


def _graphs(structures: Sequence[Atoms], z_table: AtomicNumberTable, r_max: float,
            heads: list[str], labels: bool) -> list[mace_data.AtomicData]:
    known = set(z_table.zs)
    out = []
    for i, atoms in enumerate(structures):
        unknown = set(int(z) for z in atoms.numbers) - known
        if unknown:
            names = sorted(ase.data.chemical_symbols[z] for z in unknown)
            raise ValueError(f"structure {i} has elements {names} the model was not trained on")
        out.append(mace_data.AtomicData.from_config(
            _config(atoms, labels), z_table=z_table, cutoff=r_max, heads=heads))
    return out


class _Batch(dict):
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


class _Packed:
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

    def batch(self, idx, device: torch.device | None = None) -> _Batch:
        idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        num_nodes = self.num_nodes[idx]
        node_offsets = torch.cumsum(num_nodes, 0) - num_nodes  # new first node of each graph
        out = _Batch()
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
            out = _Batch({k: v.to(device) for k, v in out.items()})
        return out


def _part_loss(loss_fn: torch.nn.Module, ref: _Batch, pred: dict, n_graphs: int, n_atoms: int) -> torch.Tensor:
    """This part's share of ``loss_fn`` on the whole batch (``n_graphs`` graphs, ``n_atoms`` atoms).

    mace's losses are sums of means (energies and stresses over graphs, forces over atoms); each
    mean of a part, weighted by the part's share of graphs/atoms, sums over the parts to the
    loss of the whole batch, so the parts' gradients add up to the whole batch's gradient.
    """
    g = ref.num_graphs / n_graphs
    a = int(ref["batch"].numel()) / n_atoms
    if isinstance(loss_fn, modules.WeightedEnergyForcesLoss):
        return (loss_fn.energy_weight * (mace_loss.weighted_mean_squared_error_energy(ref, pred, False) * g)
                + loss_fn.forces_weight * (mace_loss.mean_squared_error_forces(ref, pred, False) * a))
    if isinstance(loss_fn, modules.WeightedEnergyForcesStressLoss):
        return (loss_fn.energy_weight * (mace_loss.weighted_mean_squared_error_energy(ref, pred, False) * g)
                + loss_fn.forces_weight * (mace_loss.mean_squared_error_forces(ref, pred, False) * a)
                + loss_fn.stress_weight * (mace_loss.weighted_mean_squared_stress(ref, pred, False) * g))
    raise TypeError(f"no split-batch form for {type(loss_fn).__name__}")


class _Workers:
    """``n`` lanes that run one part each of a split batch: the calling thread and ``n - 1``
    worker threads. Each torch op runs on one core (intra-op threads 1) and the parts run in
    parallel, which on small MACE models beats splitting every op across cores (sub-ms ops,
    synchronisation per op); results come back in part order, so reductions are reproducible.
    A context manager: the worker threads end on exit."""

    def __init__(self, n: int):
        from concurrent.futures import ThreadPoolExecutor

        self.n = n
        self._pool = ThreadPoolExecutor(n - 1, thread_name_prefix="cs-mace") if n > 1 else None

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def map(self, fn, items: list) -> list:
        futures = [self._pool.submit(fn, item) for item in items[1:]] if len(items) > 1 else []
        first = fn(items[0])
        return [first] + [f.result() for f in futures]


def _train_order(n_train: int, batch_size: int, seed: int, drop_last: bool) -> torch.utils.data.DataLoader:
    """Index batches into the training split, in ``mace_run_train``'s order: each pass draws from
    the same generator, seeded the same way, as the CLI's shuffled train loader does."""
    return torch.utils.data.DataLoader(range(n_train), batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                       generator=torch.Generator().manual_seed(seed), collate_fn=list)


def _split(idx, parts: int) -> list[np.ndarray]:
    return [p for p in np.array_split(np.asarray(idx, dtype=np.int64), min(parts, len(idx))) if len(p)]


# --------------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------------
class MACEModel:
    """A MACE potential. ``self.model`` is the ``ScaleShiftMACE`` module once fitted or loaded."""

    def __init__(self, settings: MACESettings, threads: int | None = None):
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be positive, got {threads}")
        self.settings = settings
        self.threads = threads
        self.model: modules.ScaleShiftMACE | None = None
        self.z_table: AtomicNumberTable | None = None
        self.fit_info: dict = {}
        self.history: list[dict] = []

    # ---------------------------------------------------------------- helpers
    @property
    def _device(self) -> torch.device:
        if self.settings.device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("settings.device='cuda' but CUDA is not available")
        return torch.device(self.settings.device)

    @property
    def _dtype(self) -> torch.dtype:
        if self.model is not None:
            return next(self.model.parameters()).dtype
        return _DTYPES[self.settings.dtype]

    @property
    def r_max(self) -> float:
        self._require_model()
        return float(self.model.r_max)

    def _require_model(self) -> None:
        if self.model is None:
            raise RuntimeError("MACEModel has no weights yet: call fit() or load() first")

    def _heads(self) -> list[str]:
        return list(getattr(self.model, "heads", ["Default"]))

    def _e0s(self, configs: list, z_table: AtomicNumberTable) -> np.ndarray:
        if self.settings.E0s == "average":
            e0 = mace_data.compute_average_E0s(configs, z_table)
        else:
            given = {ase.data.atomic_numbers[s]: v for s, v in self.settings.E0s.items()}
            missing = [ase.data.chemical_symbols[z] for z in z_table.zs if z not in given]
            if missing:
                raise ValueError(f"E0s has no entry for elements {missing}")
            e0 = given
        return np.array([[float(e0[z]) for z in z_table.zs]])  # [n_heads=1, n_elements]

    def _build(self, train_pass, configs, z_table) -> tuple[modules.ScaleShiftMACE, dict]:
        """The model; ``train_pass()`` gives the batches of one pass over the training set (like
        ``mace_run_train``, which reads its shuffled train loader once for ``avg_num_neighbors``
        and once more for the scale unless ``no_scaling``)."""
        s = self.settings
        atomic_energies = self._e0s(configs, z_table)
        avg_num_neighbors = float(modules.compute_avg_num_neighbors(train_pass()))
        if s.scaling == "no_scaling":
            mean, std = 0.0, 1.0
        else:
            mean_arr, std_arr = modules.scaling_classes[s.scaling](train_pass(), atomic_energies)
            mean = float(np.atleast_1d(mean_arr)[0])
            std = float(np.atleast_1d(std_arr)[0])
        shift = mean if s.model == "ScaleShiftMACE" else 0.0
        model = modules.ScaleShiftMACE(
            r_max=s.r_max,
            num_bessel=s.num_bessel,
            num_polynomial_cutoff=s.num_polynomial_cutoff,
            max_ell=s.max_ell,
            interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
            interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
            num_interactions=s.num_interactions,
            num_elements=len(z_table),
            hidden_irreps=o3.Irreps(s.hidden_irreps),
            MLP_irreps=o3.Irreps(s.MLP_irreps),
            atomic_energies=atomic_energies,
            avg_num_neighbors=avg_num_neighbors,
            atomic_numbers=z_table.zs,
            correlation=s.correlation,
            gate=modules.gate_dict[s.gate],
            pair_repulsion=False,
            distance_transform="None",
            radial_MLP=list(s.radial_MLP),
            radial_type="bessel",
            heads=["Default"],
            use_reduced_cg=s.use_reduced_cg,
            atomic_inter_scale=std,
            atomic_inter_shift=shift,
        )
        info = {
            "E0s": {ase.data.chemical_symbols[z]: float(e) for z, e in zip(z_table.zs, atomic_energies[0])},
            "avg_num_neighbors": avg_num_neighbors,
            "scale": std,
            "shift": shift,
        }
        return model, info

    def _param_groups(self, model: torch.nn.Module) -> list[dict]:
        """mace.tools.scripts_utils.get_params_options, without freezing / lr factors."""
        s = self.settings
        decay, no_decay = [], []
        for name, param in model.interactions.named_parameters():
            (decay if ("linear.weight" in name or "skip_tp_full.weight" in name) else no_decay).append(param)
        return [
            {"name": "embedding", "params": list(model.node_embedding.parameters()), "weight_decay": 0.0},
            {"name": "interactions_decay", "params": decay, "weight_decay": s.weight_decay},
            {"name": "interactions_no_decay", "params": no_decay, "weight_decay": 0.0},
            {"name": "products", "params": list(model.products.parameters()), "weight_decay": s.weight_decay},
            {"name": "readouts", "params": list(model.readouts.parameters()), "weight_decay": 0.0},
        ]

    def _evaluate(self, model, loss_fn, packed: _Packed, workers: _Workers, compute_stress: bool) -> dict:
        """Validation loss (mace's loss on the whole validation set as one batch) and RMSEs.

        The set is split into one contiguous part per worker lane, each evaluated in batches of
        at most ``_PREDICT_BATCH`` graphs; parts and batches only change float summation order."""
        device = self._device
        all_idx = np.arange(packed.n)
        n_graphs = packed.n
        n_atoms = int(packed.num_nodes.sum())

        def run(part: np.ndarray):
            loss, de, df = 0.0, [], []
            for start in range(0, len(part), _PREDICT_BATCH):
                batch = packed.batch(part[start:start + _PREDICT_BATCH], device)
                out = model(batch.to_dict(), training=False, compute_force=True, compute_stress=compute_stress)
                loss += float(_part_loss(loss_fn, batch, out, n_graphs, n_atoms).detach())
                sizes = (batch.ptr[1:] - batch.ptr[:-1]).to(out["energy"].dtype)
                de.append(((out["energy"] - batch.energy) / sizes).detach().cpu().double())
                df.append((out["forces"] - batch.forces).detach().cpu().double().reshape(-1))
            return loss, de, df

        with _frozen(model):
            results = workers.map(run, _split(all_idx, workers.n))
        de_t = torch.cat([t for r in results for t in r[1]])
        df_t = torch.cat([t for r in results for t in r[2]])
        return {
            "valid_loss": float(sum(r[0] for r in results)),
            "valid_rmse_e_meV_per_atom": 1e3 * float(torch.sqrt(torch.mean(de_t ** 2))),
            "valid_rmse_f_meV_per_A": 1e3 * float(torch.sqrt(torch.mean(df_t ** 2))),
        }

    def _lanes(self) -> tuple[int, bool]:
        """(parallel batch parts, deterministic-algorithms mode needed).

        On CPU with ``threads`` given, each batch is split into ``threads`` parts computed in
        parallel with one intra-op thread each: ops are then serial, so reproducible without
        ``torch.use_deterministic_algorithms`` (its sort-based scatter backward cost 1-7 % per
        epoch in our measurements). Otherwise (CUDA, or torch's default thread count) one part
        and deterministic mode."""
        if self.settings.device == "cpu" and self.threads is not None:
            return self.threads, False
        return 1, True

    # ---------------------------------------------------------------- protocol
    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None) -> "MACEModel":
        """Train a fresh model on ``train`` (labelled structures); returns ``self``.

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
        once, graphs are collated once and batches gathered by index (:class:`_Packed`), and with
        ``threads`` on CPU each batch is split into ``threads`` parts computed in parallel
        (:class:`_Workers`, :func:`_part_loss`), validation too.

        Deterministic: the same seed, data, dtype and ``threads`` give bit-identical weights
        (different ``threads`` differ in the last bits: the parts differ). The caller's RNG state,
        default dtype, thread count and deterministic-algorithms mode are restored afterwards.
        """
        from torch_ema import ExponentialMovingAverage  # mace dependency

        s = self.settings
        train = list(train)
        if not train:
            raise ValueError("fit() needs at least one training structure")
        device = self._device
        dtype = _DTYPES[s.dtype]
        rng = np.random.default_rng(seed)
        n = len(train)
        perm = rng.permutation(n)  # = mace's random_train_valid_split (rng.shuffle of range(n))
        n_valid = 0 if (s.valid_fraction == 0.0 or n < 2) else min(max(int(s.valid_fraction * n), 1), n - 1)
        train_idx, valid_idx = perm[: n - n_valid], perm[n - n_valid:]
        n_lanes, deterministic = self._lanes()
        intra_threads = 1 if not deterministic else self.threads
        # mace_run_train drops the incomplete last batch; keep it when it is the only one
        drop_last = len(train_idx) > s.batch_size

        with _default_dtype(dtype), _num_threads(intra_threads), \
                (_deterministic() if deterministic else contextlib.nullcontext()), \
                torch.random.fork_rng(devices=[]), _Workers(n_lanes) as workers:
            torch.manual_seed(seed)
            z_table = AtomicNumberTable(sorted({int(z) for a in train for z in a.numbers}))
            configs = [_config(a, labels=True) for a in train]
            graphs = [mace_data.AtomicData.from_config(c, z_table=z_table, cutoff=s.r_max, heads=["Default"])
                      for c in configs]
            train_set = _Packed([graphs[i] for i in train_idx])
            valid_set = _Packed([graphs[i] for i in valid_idx]) if n_valid else None
            order = _train_order(len(train_idx), s.batch_size, seed, drop_last)

            def train_pass() -> list[_Batch]:
                return [train_set.batch(idx) for idx in order]

            model, info = self._build(train_pass, [configs[i] for i in train_idx], z_table)
            model.to(device)
            use_stress = s.stress_weight > 0
            clip_grad = s.clip_grad
            if use_stress:
                loss_fn = modules.WeightedEnergyForcesStressLoss(
                    energy_weight=s.energy_weight, forces_weight=s.forces_weight, stress_weight=s.stress_weight)
            else:
                loss_fn = modules.WeightedEnergyForcesLoss(
                    energy_weight=s.energy_weight, forces_weight=s.forces_weight)
            loss_fn.to(device)
            optimizer = torch.optim.Adam(self._param_groups(model), lr=s.lr, amsgrad=s.amsgrad, betas=(0.9, 0.999))
            scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, factor=s.lr_factor, patience=s.scheduler_patience)
            ema = ExponentialMovingAverage(model.parameters(), decay=s.ema_decay) if s.ema_decay else None
            params = list(model.parameters())

            def train_part(args):
                idx, n_graphs, n_atoms = args
                batch = train_set.batch(idx, device)
                out = model(batch.to_dict(), training=True, compute_force=True, compute_stress=use_stress)
                loss = _part_loss(loss_fn, batch, out, n_graphs, n_atoms)
                return loss.detach(), torch.autograd.grad(loss, params, allow_unused=True)

            self.history = []
            log_file = None
            if log_path is not None:
                log_path = Path(log_path)
                log_path.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(log_path, "w", encoding="utf-8")
            best_loss, best_state, best_epoch = float("inf"), None, None
            valid_loss = None
            try:
                for epoch in range(s.epochs):
                    t0 = time.perf_counter()
                    if epoch > 0 and valid_loss is not None:
                        scheduler.step(valid_loss)
                    losses = []
                    for idx in order:
                        idx = np.asarray(idx, dtype=np.int64)
                        n_graphs = len(idx)
                        n_atoms = int(train_set.num_nodes[idx].sum())
                        parts = workers.map(train_part, [(p, n_graphs, n_atoms) for p in _split(idx, n_lanes)])
                        for k, p in enumerate(params):
                            grad = None
                            for _, grads in parts:  # fixed order: reproducible sum
                                if grads[k] is not None:
                                    grad = grads[k] if grad is None else grad + grads[k]
                            p.grad = grad
                        if clip_grad is not None:
                            torch.nn.utils.clip_grad_norm_(params, max_norm=clip_grad)
                        optimizer.step()
                        if ema is not None:
                            ema.update()
                        losses.append(float(sum(loss for loss, _ in parts)))
                    record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                              "lr": float(optimizer.param_groups[0]["lr"])}
                    if valid_set is not None:
                        ctx = ema.average_parameters() if ema is not None else contextlib.nullcontext()
                        with ctx:
                            metrics = self._evaluate(model, loss_fn, valid_set, workers, use_stress)
                            valid_loss = metrics["valid_loss"]
                            if valid_loss < best_loss:
                                best_loss, best_epoch = valid_loss, epoch + 1
                                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                        record.update(metrics)
                    else:
                        record.update(valid_loss=None, valid_rmse_e_meV_per_atom=None, valid_rmse_f_meV_per_A=None)
                    record["seconds"] = time.perf_counter() - t0
                    self.history.append(record)
                    if log_file is not None:
                        log_file.write(json.dumps(record) + "\n")
                        log_file.flush()
            finally:
                if log_file is not None:
                    log_file.close()

            if best_state is not None:
                model.load_state_dict(best_state)
            elif ema is not None and s.epochs > 0:
                ema.copy_to(model.parameters())
            for p in params:
                p.grad = None
            model.eval()

        self.model = model
        self.z_table = z_table
        self.fit_info = {**info, "seed": int(seed), "n_train": int(len(train_idx)), "n_valid": int(n_valid),
                         "best_epoch": best_epoch, "elements": [ase.data.chemical_symbols[z] for z in z_table.zs]}
        return self

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies (energy eV, forces eV/Å, stress eV/Å³ in ASE Voigt order if periodic)."""
        self._require_model()
        structures = list(structures)
        if not structures:
            return []
        device = self._device
        need_stress = [_has_stress(a) for a in structures]
        out_atoms: list[Atoms] = []
        with _default_dtype(self._dtype), _num_threads(self.threads), _deterministic():
            graphs = _graphs(structures, self.z_table, self.r_max, self._heads(), labels=False)
            loader = torch_geometric.DataLoader(graphs, batch_size=_PREDICT_BATCH, shuffle=False, drop_last=False)
            offset = 0
            with _frozen(self.model):
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
            for (mul, ir), sl in zip(irreps, irreps.slices()):
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
        with _default_dtype(self._dtype), _num_threads(self.threads), _deterministic():
            graphs = _graphs(structures, self.z_table, self.r_max, self._heads(), labels=False)
            loader = torch_geometric.DataLoader(graphs, batch_size=_PREDICT_BATCH, shuffle=False, drop_last=False)
            with _frozen(self.model), torch.no_grad():
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

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits of the state dict (names, dtypes, shapes, bytes, in name order).

        Identical for identical weights whatever process trained or saved them (file bytes are not)."""
        self._require_model()
        digest = hashlib.sha256()
        for name, tensor in sorted(self.model.state_dict().items()):
            tensor = tensor.detach().to("cpu").contiguous()
            digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        return "sha256:" + digest.hexdigest()[:16]

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
    def load(cls, path: Path, settings: MACESettings, threads: int | None = None) -> "MACEModel":
        obj = cls(settings, threads=threads)
        # weights_only=False: the file is a pickled nn.Module that we wrote ourselves
        module = torch.load(Path(path), map_location=obj._device, weights_only=False)
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"{path} does not hold a torch module")
        module = module.to(_DTYPES[settings.dtype])
        module.eval()
        obj.model = module
        obj.z_table = AtomicNumberTable([int(z) for z in module.atomic_numbers])
        return obj
