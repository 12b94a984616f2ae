"""ANI potential behind the :class:`~collapse_sim.models.base.Model` protocol (see
``collapse_sim.models.ani`` for the architecture, ``network`` for the batching).

The saved file is one ``torch.save`` of a plain dict: format tag, element symbols, the
architecture (so the file rebuilds its network without the scenario's settings), the state
dict (E0s included) and the fit summary; written atomically.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path

import ase.data
import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from collapse_sim.data.structures import attach_labels, energy_of
from collapse_sim.models.ani import ANISettings
from collapse_sim.models.ani.network import PREDICT_BATCH, ANINetwork, architecture, evaluate, pack
from collapse_sim.models.base import BATCHED_FORCES, FEATURES, TRAINABLE, calculate_by_predict, periodic
from collapse_sim.models.budget import passes
from collapse_sim.models.epoch_log import EpochLog
from collapse_sim.models.split import train_valid_split
from collapse_sim.runtime.allocator import keep_heap
from collapse_sim.runtime.atomic import replacing
from collapse_sim.runtime.torch_state import (
    DTYPES,
    check_threads,
    default_dtype,
    frozen,
    model_call,
    state_dict_fingerprint,
    torch_device,
)

FORMAT = "collapse_sim.ani/1"


def fit_e0s(train: Sequence[Atoms], symbols: Sequence[str]) -> np.ndarray:
    """Per-element reference energies: least squares of the energies on the element counts
    (minimum norm, so an element absent from ``train`` gets 0), as MACE's E0s 'average'."""
    z = [ase.data.atomic_numbers[s] for s in symbols]
    counts = np.array([[np.count_nonzero(a.numbers == zk) for zk in z] for a in train], dtype=float)
    energies = np.array([energy_of(a) for a in train])
    e0, *_ = np.linalg.lstsq(counts, energies, rcond=None)
    return e0


def _loss(network: ANINetwork, batch, settings: ANISettings, create_graph: bool) -> tuple[torch.Tensor, dict]:
    """energy_weight * mean((dE / n_atoms)^2) + forces_weight * mean(dF^2), MACE's loss form."""
    energies, forces, _ = evaluate(network, batch, create_graph=create_graph)
    de = (energies - batch.energies) / batch.n_atoms
    df = forces - batch.forces
    loss = settings.energy_weight * de.square().mean() + settings.forces_weight * df.square().mean()
    return loss, {"de": de.detach(), "df": df.detach()}


def _validate(network: ANINetwork, packed, settings: ANISettings, dtype, device) -> dict:
    """Loss and RMSEs on the whole validation set (batches only change summation order)."""
    loss, n, de, df = 0.0, 0, [], []
    with frozen(network):
        for start in range(0, packed.n, PREDICT_BATCH):
            batch = packed.batch(range(start, min(start + PREDICT_BATCH, packed.n)), dtype, device)
            _, errors = _loss(network, batch, settings, create_graph=False)
            # the whole set's loss: energy term over structures, forces over components
            loss += float(settings.energy_weight * errors["de"].square().sum()) / packed.n
            n += errors["df"].numel()
            de.append(errors["de"].double().cpu())
            df.append(errors["df"].double().cpu().reshape(-1))
    de_t, df_t = torch.cat(de), torch.cat(df)
    loss += settings.forces_weight * float(df_t.square().sum()) / n
    return {"valid_loss": loss, "valid_rmse_e_meV_per_atom": 1e3 * float(de_t.square().mean().sqrt()),
            "valid_rmse_f_meV_per_A": 1e3 * float(df_t.square().mean().sqrt())}


class ANICalculator(Calculator):
    """ASE calculator of an :class:`ANIModel` (its own copy of the network): energy, forces and,
    for fully periodic cells, stress."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: ANIModel, **kwargs):
        super().__init__(**kwargs)
        self.model = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        calculate_by_predict(self, self.model.predict, atoms, properties, system_changes)


class ANIModel:
    """An ANI potential. ``self.network`` is the :class:`ANINetwork` once fitted or loaded.

    Elements it was not fitted with (neither in ``train`` nor in ``species``): predict, embed and
    the batched potential raise ValueError naming them."""

    capabilities = frozenset({TRAINABLE, FEATURES, BATCHED_FORCES})

    def __init__(self, settings: ANISettings, threads: int | None = None):
        self.settings = settings
        self.threads = check_threads(threads)
        self.network: ANINetwork | None = None
        self.fit_info: dict = {}
        self.history: list[dict] = []

    @property
    def _device(self) -> torch.device:
        return torch_device(self.settings.device)

    @property
    def _dtype(self) -> torch.dtype:
        return DTYPES[self.settings.dtype]

    def _require(self) -> ANINetwork:
        if self.network is None:
            raise RuntimeError("ANIModel has no weights yet: call fit() or load() first")
        return self.network

    @property
    def embedding_dim(self) -> int:
        return self._require().embedding_dim

    def _scope(self):
        """Torch state for one call: the model's dtype, ``threads`` and deterministic kernels."""
        return model_call(self._dtype, self.threads)

    # ---------------------------------------------------------------- protocol
    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> ANIModel:
        """Train a fresh network on ``train`` (labelled structures: energies and forces); returns ``self``.

        Elements are those of ``train`` and ``species`` (the system's): an element missing from
        ``train`` keeps its untrained MLP and E0 = 0, so the model still predicts it. The split
        (``np.random.default_rng(seed)``), initial weights (``torch.manual_seed(seed)``) and batch
        order (a ``torch.Generator`` seeded with ``seed``) follow the seed: the same seed, data,
        dtype and ``threads`` give bit-identical weights. E0s are least squares on the training
        split; the network fits the rest. Adam; with a validation split the weights of the epoch
        with the lowest validation loss are kept, else the last. The caller's RNG state, default
        dtype, thread count and deterministic mode are restored afterwards.
        """
        s = self.settings
        train = list(train)
        if not train:
            raise ValueError("fit() needs at least one training structure")
        device, dtype = self._device, self._dtype
        train_idx, valid_idx = train_valid_split(len(train), s.valid_fraction, seed)
        n_valid = len(valid_idx)
        zs = sorted({int(z) for a in train for z in a.numbers} | {ase.data.atomic_numbers[e] for e in species})
        symbols = [ase.data.chemical_symbols[z] for z in zs]
        keep_heap()  # freed tensors reused, not faulted back in page by page

        with self._scope(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = ANINetwork(symbols, architecture(s))
            e0 = fit_e0s([train[i] for i in train_idx], symbols)
            network.e0.copy_(torch.as_tensor(e0))
            network.to(device=device, dtype=dtype)  # torchani makes its AEV constants float32
            train_set = pack(network, [train[i] for i in train_idx], labels=True)
            valid_set = pack(network, [train[i] for i in valid_idx], labels=True) if n_valid else None
            optimizer = torch.optim.Adam(network.parameters(), lr=s.lr)
            order = torch.Generator().manual_seed(seed)
            best = (float("inf"), None, None)  # (loss, state, epoch)
            with EpochLog(log_path) as log:
                batches_per_pass = math.ceil(train_set.n / s.batch_size)
                n_passes = passes(s.epochs, s.steps, batches_per_pass)
                for epoch in range(n_passes):
                    t0 = time.perf_counter()
                    losses = []
                    shuffled = torch.randperm(train_set.n, generator=order).tolist()
                    for start in range(0, train_set.n, s.batch_size):
                        batch = train_set.batch(shuffled[start:start + s.batch_size], dtype, device)
                        optimizer.zero_grad(set_to_none=True)
                        loss, _ = _loss(network, batch, s, create_graph=True)
                        loss.backward()
                        optimizer.step()
                        losses.append(float(loss.detach()))
                    metrics = None
                    if valid_set is not None:
                        metrics = _validate(network, valid_set, s, dtype, device)
                        if metrics["valid_loss"] < best[0]:
                            best = (metrics["valid_loss"], copy.deepcopy(network.state_dict()), epoch + 1)
                    log.add(epoch + 1, float(np.mean(losses)), float(optimizer.param_groups[0]["lr"]), metrics, t0)
            history = log.history
            if best[1] is not None:
                network.load_state_dict(best[1])
            network.zero_grad(set_to_none=True)
            network.eval()

        self.network, self.history = network, history
        self.fit_info = {"E0s": dict(zip(symbols, map(float, e0))), "seed": int(seed), "n_train": int(len(train_idx)),
                         "epochs": int(n_passes), "optimizer_steps": int(n_passes * batches_per_pass),
                         "n_valid": int(n_valid), "best_epoch": best[2], "elements": symbols}
        return self

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies (energy eV, forces eV/Å, stress eV/Å³ in ASE Voigt order for fully periodic cells)."""
        network = self._require()
        structures = list(structures)
        out: list[Atoms] = []
        with self._scope(), frozen(network):
            packed = pack(network, structures, labels=False)
            for start in range(0, len(structures), PREDICT_BATCH):
                chunk = structures[start:start + PREDICT_BATCH]
                need = [periodic(a) for a in chunk]
                batch = packed.batch(range(start, start + len(chunk)), self._dtype, self._device)
                energies, forces, stress = evaluate(network, batch, stress=any(need))
                energies = energies.detach().double().cpu().numpy()
                forces = forces.detach().double().cpu().numpy()
                stress = stress.detach().double().cpu().numpy() if stress is not None else None
                ptr = np.concatenate([[0], np.cumsum([len(a) for a in chunk])])
                for k, atoms in enumerate(chunk):
                    voigt = full_3x3_to_voigt_6_stress(stress[k]) if need[k] else None
                    out.append(attach_labels(atoms, energies[k], forces[ptr[k]:ptr[k + 1]], voigt))
        return out

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, hidden[-1]): per structure, the mean over its atoms of the last hidden layer of the
        atom's element MLP (the features the energy readout sees; arXiv 2512.03750)."""
        network = self._require()
        structures = list(structures)
        if not structures:
            return np.zeros((0, network.embedding_dim))
        chunks = []
        with self._scope(), frozen(network), torch.no_grad():
            packed = pack(network, structures, labels=False)
            for start in range(0, len(structures), PREDICT_BATCH):
                batch = packed.batch(range(start, min(start + PREDICT_BATCH, len(structures))), self._dtype,
                                     self._device)
                feats = network.features(batch, batch.positions)
                sums = feats.new_zeros((batch.n, feats.shape[1])).index_add(0, batch.structure, feats)
                chunks.append((sums / batch.n_atoms.view(-1, 1)).double().cpu().numpy())
        return np.concatenate(chunks, axis=0)

    def calculator(self) -> Calculator:
        """An ASE calculator on a private copy of the network (same dtype, threads, determinism as predict)."""
        self._require()
        private = ANIModel(self.settings, threads=self.threads)
        private.network = copy.deepcopy(self.network)
        return ANICalculator(private)

    def batched_potential(self, skin: float | None = None):
        """Energies and forces of many replicas per call (``collapse_sim.models.ani.batched``):
        neighbour candidates within the radial cutoff + ``skin`` Å (default ``batched.DEFAULT_SKIN``)."""
        from collapse_sim.models.ani import batched

        self._require()
        return batched.ANIPotential(self, batched.DEFAULT_SKIN if skin is None else skin)

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits of the state dict (names, dtypes, shapes, bytes, in name order)."""
        return state_dict_fingerprint(self._require())

    def save(self, path: Path) -> None:
        """One torch file (elements, architecture, state dict with the E0s, fit summary), atomically."""
        network = self._require()
        state = {k: v.detach().to("cpu") for k, v in network.state_dict().items()}
        data = {"format": FORMAT, "symbols": network.symbols, "architecture": network.arch, "state_dict": state,
                "fit_info": self.fit_info}
        with replacing(Path(path)) as tmp:
            torch.save(data, tmp)

    @classmethod
    def load(cls, path: Path, settings: ANISettings, threads: int | None = None) -> ANIModel:
        """The model saved at ``path``; its architecture comes from the file, dtype and device from ``settings``."""
        obj = cls(settings, threads=threads)
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a collapse_sim ANI model file")
        with default_dtype(obj._dtype):
            network = ANINetwork(data["symbols"], data["architecture"])
        network.load_state_dict(data["state_dict"])
        obj.network = network.to(device=obj._device, dtype=obj._dtype).eval()
        obj.fit_info = data.get("fit_info", {})
        return obj
