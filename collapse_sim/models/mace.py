"""MACE potential behind the :class:`~collapse_sim.models.base.Model` protocol.

Everything is built through the mace-torch Python API (no CLI, no files in between):

* graphs: ``mace.data.config_from_atoms`` + ``AtomicData.from_config``, built once per dataset;
* model: ``mace.modules.ScaleShiftMACE`` configured as ``mace_run_train --model MACE`` does it
  (first layer ``RealAgnosticInteractionBlock``, later ones ``RealAgnosticResidualInteractionBlock``,
  E0s by least squares on the training split, ``avg_num_neighbors`` and the scale from the data);
* training: mace's ``WeightedEnergyForcesLoss`` (``...StressLoss`` when ``stress_weight > 0``),
  Adam(amsgrad) with mace's parameter groups / weight decay, ``ReduceLROnPlateau``, gradient
  clipping, EMA, keeping the weights with the best validation loss.

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


def _collate(graphs: Sequence[mace_data.AtomicData], device: torch.device):
    return torch_geometric.Batch.from_data_list(list(graphs)).to(device)


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

    def _build(self, train_graphs, configs, z_table) -> tuple[modules.ScaleShiftMACE, dict]:
        s = self.settings
        atomic_energies = self._e0s(configs, z_table)
        loader = torch_geometric.DataLoader(train_graphs, batch_size=s.batch_size, shuffle=False)
        avg_num_neighbors = float(modules.compute_avg_num_neighbors(loader))
        if s.scaling == "no_scaling":
            mean, std = 0.0, 1.0
        else:
            mean_arr, std_arr = modules.scaling_classes[s.scaling](loader, atomic_energies)
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

    def _evaluate(self, model, loss_fn, graphs, compute_stress: bool) -> dict:
        """Validation loss (mean over structures) and RMSEs, like mace's evaluate()."""
        device = self._device
        total_loss, n_graphs = 0.0, 0
        de, df = [], []
        with _frozen(model):
            for start in range(0, len(graphs), _PREDICT_BATCH):
                batch = _collate(graphs[start:start + _PREDICT_BATCH], device)
                out = model(batch.to_dict(), training=False, compute_force=True,
                            compute_stress=compute_stress)
                n = batch.num_graphs
                total_loss += float(loss_fn(pred=out, ref=batch).detach()) * n
                n_graphs += n
                sizes = (batch.ptr[1:] - batch.ptr[:-1]).to(out["energy"].dtype)
                de.append(((out["energy"] - batch.energy) / sizes).detach().cpu().double())
                df.append((out["forces"] - batch.forces).detach().cpu().double().reshape(-1))
        de_t, df_t = torch.cat(de), torch.cat(df)
        return {
            "valid_loss": total_loss / n_graphs,
            "valid_rmse_e_meV_per_atom": 1e3 * float(torch.sqrt(torch.mean(de_t ** 2))),
            "valid_rmse_f_meV_per_A": 1e3 * float(torch.sqrt(torch.mean(df_t ** 2))),
        }

    # ---------------------------------------------------------------- protocol
    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None) -> "MACEModel":
        """Train a fresh model on ``train`` (labelled structures); returns ``self``.

        Deterministic: the same seed, data, dtype and torch thread count give bit-identical weights.
        Training runs under ``torch.use_deterministic_algorithms`` (restored afterwards), without
        which the force backward pass is not reproducible with >1 thread under CPU load. Different
        thread counts still differ in the last bits (reduction order depends on the thread count).
        The seed drives the weight initialisation (``torch.manual_seed`` inside ``fork_rng``, so the
        caller's RNG is untouched) and a numpy Generator for the train/valid split and shuffling.
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
        perm = rng.permutation(n)
        n_valid = 0 if (s.valid_fraction == 0.0 or n < 2) else min(max(int(s.valid_fraction * n), 1), n - 1)
        train_idx, valid_idx = perm[: n - n_valid], perm[n - n_valid:]

        with _default_dtype(dtype), _num_threads(self.threads), _deterministic(), \
                torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            z_table = AtomicNumberTable(sorted({int(z) for a in train for z in a.numbers}))
            configs = [_config(a, labels=True) for a in train]
            graphs = [mace_data.AtomicData.from_config(c, z_table=z_table, cutoff=s.r_max, heads=["Default"])
                      for c in configs]
            train_graphs = [graphs[i] for i in train_idx]
            valid_graphs = [graphs[i] for i in valid_idx]

            model, info = self._build(train_graphs, [configs[i] for i in train_idx], z_table)
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
                    order = train_idx[rng.permutation(len(train_idx))]
                    losses = []
                    for start in range(0, len(order), s.batch_size):
                        batch = _collate([graphs[i] for i in order[start:start + s.batch_size]], device)
                        optimizer.zero_grad(set_to_none=True)
                        out = model(batch.to_dict(), training=True, compute_force=True,
                                    compute_stress=use_stress)
                        loss = loss_fn(pred=out, ref=batch)
                        loss.backward()
                        if clip_grad is not None:
                            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=clip_grad)
                        optimizer.step()
                        if ema is not None:
                            ema.update()
                        losses.append(float(loss.detach()))
                    record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)),
                              "lr": float(optimizer.param_groups[0]["lr"])}
                    if valid_graphs:
                        ctx = ema.average_parameters() if ema is not None else contextlib.nullcontext()
                        with ctx:
                            metrics = self._evaluate(model, loss_fn, valid_graphs, use_stress)
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
