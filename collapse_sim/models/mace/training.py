"""Training, as ``mace_run_train`` trains (see :meth:`MACEModel.fit <collapse_sim.models.mace.model.MACEModel.fit>`):
the network is built from the training data (E0s, ``avg_num_neighbors``, scale), then each
batch is split into parts computed in parallel (``collapse_sim.runtime.lanes``, :func:`part_loss`)."""
from __future__ import annotations

# first: it imports mace before e3nn and silences e3nn's import warnings
from collapse_sim.models.mace.preamble import (DTYPES, default_dtype, deterministic, frozen,  # isort: skip
                                               num_threads, torch_device)

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import ase.data
import numpy as np
import torch
from ase import Atoms
from e3nn import o3
from mace import data as mace_data
from mace import modules
from mace.modules import loss as mace_loss
from mace.tools import AtomicNumberTable

from collapse_sim.models.budget import passes
from collapse_sim.models.epoch_log import EpochLog
from collapse_sim.models.mace.edge_paths import fast_paths
from collapse_sim.models.mace.graphs import PREDICT_BATCH, DictBatch, Packed, to_config
from collapse_sim.models.split import train_valid_split
from collapse_sim.runtime.allocator import keep_heap
from collapse_sim.runtime.lanes import Workers, split
from collapse_sim.runtime.lanes import count as lane_count
from collapse_sim.runtime.torch_state import state_dict_fingerprint


def part_loss(loss_fn: torch.nn.Module, ref: DictBatch, pred: dict, n_graphs: int, n_atoms: int) -> torch.Tensor:
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


def train_order(n_train: int, batch_size: int, seed: int, drop_last: bool) -> torch.utils.data.DataLoader:
    """Index batches into the training split, in ``mace_run_train``'s order: each pass draws from
    the same generator, seeded the same way, as the CLI's shuffled train loader does."""
    return torch.utils.data.DataLoader(range(n_train), batch_size=batch_size, shuffle=True, drop_last=drop_last,
                                       generator=torch.Generator().manual_seed(seed), collate_fn=list)


def e0s(settings, configs: list, z_table: AtomicNumberTable) -> np.ndarray:
    """Per-element reference energies, [1 head, n_elements]: least squares on ``configs`` or as given."""
    if settings.E0s == "average":
        e0 = mace_data.compute_average_E0s(configs, z_table)
    else:
        given = {ase.data.atomic_numbers[s]: v for s, v in settings.E0s.items()}
        missing = [ase.data.chemical_symbols[z] for z in z_table.zs if z not in given]
        if missing:
            raise ValueError(f"E0s has no entry for elements {missing}")
        e0 = given
    return np.array([[float(e0[z]) for z in z_table.zs]])  # [n_heads=1, n_elements]


def build(settings, train_pass, configs, z_table) -> tuple[modules.ScaleShiftMACE, dict]:
    """The model; ``train_pass()`` gives the batches of one pass over the training set (like
    ``mace_run_train``, which reads its shuffled train loader once for ``avg_num_neighbors``
    and once more for the scale unless ``no_scaling``)."""
    s = settings
    atomic_energies = e0s(settings, configs, z_table)
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


def warm_start(settings, configs, z_table) -> tuple[modules.ScaleShiftMACE, dict]:
    """The model saved at ``settings.init``, to be fine-tuned: its weights, architecture, average
    neighbour count, scale and shift as they are; its E0s kept (``E0s: init``) or fitted anew on
    ``configs`` (the fine-tuning labels may have another energy zero than the pre-training ones),
    an element ``configs`` lack keeping the file's (least squares would set it to 0). ValueError if
    the file does not represent every element of ``z_table``."""
    path = Path(settings.init).expanduser()
    model = torch.load(path, map_location="cpu", weights_only=False)  # a pickled module, as save() writes
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "atomic_energies_fn"):
        raise ValueError(f"model.init: {path} does not hold a MACE model")
    model = model.to(torch.get_default_dtype())
    zs = [int(z) for z in model.atomic_numbers]
    if zs != list(z_table.zs):
        raise ValueError(f"model.init: {path} represents elements {zs}, the training set and system {z_table.zs}")
    init_hash = state_dict_fingerprint(model)
    old = model.atomic_energies_fn.atomic_energies
    kept = old.detach().cpu().numpy().astype(float).reshape(1, -1)
    if settings.E0s == "init":
        atomic_energies = kept
    else:
        atomic_energies = e0s(settings, configs, z_table)
        if settings.E0s == "average":
            present = set(np.concatenate([np.asarray(c.atomic_numbers) for c in configs]).tolist())
            absent = np.array([z not in present for z in z_table.zs])
            atomic_energies[0, absent] = kept[0, absent]
    model.atomic_energies_fn.atomic_energies = torch.tensor(atomic_energies, dtype=old.dtype).reshape(old.shape)
    model.train()
    info = {"E0s": {ase.data.chemical_symbols[z]: float(e) for z, e in zip(z_table.zs, atomic_energies[0])},
            "init": str(path), "init_hash": init_hash}
    return model, info


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """mace.tools.scripts_utils.get_params_options, without freezing / lr factors."""
    decay, no_decay = [], []
    for name, param in model.interactions.named_parameters():
        (decay if ("linear.weight" in name or "skip_tp_full.weight" in name) else no_decay).append(param)
    return [
        {"name": "embedding", "params": list(model.node_embedding.parameters()), "weight_decay": 0.0},
        {"name": "interactions_decay", "params": decay, "weight_decay": weight_decay},
        {"name": "interactions_no_decay", "params": no_decay, "weight_decay": 0.0},
        {"name": "products", "params": list(model.products.parameters()), "weight_decay": weight_decay},
        {"name": "readouts", "params": list(model.readouts.parameters()), "weight_decay": 0.0},
    ]


def evaluate(model, loss_fn, packed: Packed, workers: Workers, compute_stress: bool) -> dict:
    """Validation loss (mace's loss on the whole validation set as one batch) and RMSEs.

    The set is split into one contiguous part per worker lane, each evaluated in batches of
    at most ``PREDICT_BATCH`` graphs; parts and batches only change float summation order."""
    device = next(model.parameters()).device
    all_idx = np.arange(packed.n)
    n_graphs = packed.n
    n_atoms = int(packed.num_nodes.sum())

    def run(part: np.ndarray):
        loss, de, df = 0.0, [], []
        for start in range(0, len(part), PREDICT_BATCH):
            batch = packed.batch(part[start:start + PREDICT_BATCH], device)
            out = model(batch.to_dict(), training=False, compute_force=True, compute_stress=compute_stress)
            loss += float(part_loss(loss_fn, batch, out, n_graphs, n_atoms).detach())
            sizes = (batch.ptr[1:] - batch.ptr[:-1]).to(out["energy"].dtype)
            de.append(((out["energy"] - batch.energy) / sizes).detach().cpu().double())
            df.append((out["forces"] - batch.forces).detach().cpu().double().reshape(-1))
        return loss, de, df

    with frozen(model):
        results = workers.map(run, split(all_idx, workers.n))
    de_t = torch.cat([t for r in results for t in r[1]])
    df_t = torch.cat([t for r in results for t in r[2]])
    return {
        "valid_loss": float(sum(r[0] for r in results)),
        "valid_rmse_e_meV_per_atom": 1e3 * float(torch.sqrt(torch.mean(de_t ** 2))),
        "valid_rmse_f_meV_per_A": 1e3 * float(torch.sqrt(torch.mean(df_t ** 2))),
    }


def lanes(settings, threads: int | None) -> tuple[int, bool]:
    """(parallel batch parts, deterministic-algorithms mode needed).

    With lanes (CPU, ``threads`` given) each part runs with one intra-op thread: ops are then
    serial, so reproducible without ``torch.use_deterministic_algorithms`` (its sort-based
    scatter backward cost 1-7 % per epoch in our measurements). Otherwise (CUDA, or torch's
    default thread count) one part and deterministic mode."""
    n = lane_count(settings.device, threads)
    return n, not (settings.device == "cpu" and threads is not None)


def fit(settings, threads: int | None, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
        species: Sequence[str] = ()) -> tuple[modules.ScaleShiftMACE, AtomicNumberTable, dict, list[dict]]:
    """A fresh model trained on ``train``: (module, z_table, fit_info, per-epoch history);
    see :meth:`collapse_sim.models.mace.model.MACEModel.fit`."""
    from torch_ema import ExponentialMovingAverage  # mace dependency

    s = settings
    train = list(train)
    if not train:
        raise ValueError("fit() needs at least one training structure")
    keep_heap()  # else each step page-faults back in the memory the step before returned to the kernel
    device = torch_device(s.device)
    dtype = DTYPES[s.dtype]
    train_idx, valid_idx = train_valid_split(len(train), s.valid_fraction, seed)
    n_valid = len(valid_idx)
    n_lanes, exact = lanes(s, threads)
    intra_threads = 1 if not exact else threads
    # mace_run_train drops the incomplete last batch; keep it when it is the only one
    drop_last = len(train_idx) > s.batch_size

    with default_dtype(dtype), num_threads(intra_threads), \
            (deterministic() if exact else contextlib.nullcontext()), \
            torch.random.fork_rng(devices=[]), Workers(n_lanes) as workers:
        torch.manual_seed(seed)
        z_table = AtomicNumberTable(sorted({int(z) for a in train for z in a.numbers}
                                           | {ase.data.atomic_numbers[s] for s in species}))
        configs = [to_config(a, labels=True) for a in train]
        graphs = [mace_data.AtomicData.from_config(c, z_table=z_table, cutoff=s.r_max, heads=["Default"])
                  for c in configs]
        train_set = Packed([graphs[i] for i in train_idx])
        valid_set = Packed([graphs[i] for i in valid_idx]) if n_valid else None
        order = train_order(len(train_idx), s.batch_size, seed, drop_last)

        def train_pass() -> list[DictBatch]:
            return [train_set.batch(idx) for idx in order]

        if s.init is None:
            model, info = build(s, train_pass, [configs[i] for i in train_idx], z_table)
        else:
            model, info = warm_start(s, [configs[i] for i in train_idx], z_table)
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
        optimizer = torch.optim.Adam(param_groups(model, s.weight_decay), lr=s.lr, amsgrad=s.amsgrad,
                                     betas=(0.9, 0.999))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=s.lr_factor, patience=s.scheduler_patience)
        ema = ExponentialMovingAverage(model.parameters(), decay=s.ema_decay) if s.ema_decay else None
        params = list(model.parameters())

        def train_part(args):
            idx, n_graphs, n_atoms = args
            batch = train_set.batch(idx, device)
            out = model(batch.to_dict(), training=True, compute_force=True, compute_stress=use_stress)
            loss = part_loss(loss_fn, batch, out, n_graphs, n_atoms)
            return loss.detach(), torch.autograd.grad(loss, params, allow_unused=True)

        n_passes = passes(s.epochs, s.steps, len(order))
        best_loss, best_state, best_epoch = float("inf"), None, None
        valid_loss = None
        with EpochLog(log_path) as log, fast_paths(model):
            for epoch in range(n_passes):
                t0 = time.perf_counter()
                if epoch > 0 and valid_loss is not None:
                    scheduler.step(valid_loss)
                losses = []
                for idx in order:
                    idx = np.asarray(idx, dtype=np.int64)
                    n_graphs = len(idx)
                    n_atoms = int(train_set.num_nodes[idx].sum())
                    parts = workers.map(train_part, [(p, n_graphs, n_atoms) for p in split(idx, n_lanes)])
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
                metrics = None
                if valid_set is not None:
                    ctx = ema.average_parameters() if ema is not None else contextlib.nullcontext()
                    with ctx:
                        metrics = evaluate(model, loss_fn, valid_set, workers, use_stress)
                        valid_loss = metrics["valid_loss"]
                        if valid_loss < best_loss:
                            best_loss, best_epoch = valid_loss, epoch + 1
                            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                log.add(epoch + 1, float(np.mean(losses)), float(optimizer.param_groups[0]["lr"]), metrics, t0)
        history = log.history

        if best_state is not None:
            model.load_state_dict(best_state)
        elif ema is not None and n_passes > 0:
            ema.copy_to(model.parameters())
        for p in params:
            p.grad = None
        model.eval()

    fit_info = {**info, "seed": int(seed), "n_train": int(len(train_idx)), "n_valid": int(n_valid),
                "epochs": int(n_passes), "optimizer_steps": int(n_passes * len(order)),
                "best_epoch": best_epoch, "elements": [ase.data.chemical_symbols[z] for z in z_table.zs]}
    return model, z_table, fit_info, history
