"""CHGNet behind the :class:`~collapse_sim.models.base.Model` protocol (see
``collapse_sim.models.chgnet`` for the settings).

Structures reach CHGNet as pymatgen ``Structure`` objects; a molecule (no periodic axis) sits
in a box whose vacuum exceeds the atom-graph cutoff, so no periodic image is a neighbour. The
saved file is one ``torch.save`` of a plain dict: format tag, CHGNet's ``as_dict()`` (its
constructor arguments and state dict) and the fit summary; written atomically.
"""
from __future__ import annotations

import contextlib
import copy
import io
import math
import random
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress
from chgnet.data.dataset import StructureData, collate_graphs
from chgnet.model import CHGNet
from chgnet.model.dynamics import CHGNetCalculator
from chgnet.trainer import Trainer
from pymatgen.core import Lattice, Structure
from torch.utils.data import DataLoader, SubsetRandomSampler

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models.base import FEATURES, PRETRAINED, TRAINABLE, calculate_by_predict
from collapse_sim.models.budget import passes
from collapse_sim.models.chgnet import PUBLISHED, CHGNetSettings, refuse_uncovered
from collapse_sim.models.epoch_log import EpochLog
from collapse_sim.models.split import train_valid_split
from collapse_sim.runtime.atomic import replacing
from collapse_sim.runtime.torch_state import (
    check_threads,
    default_dtype,
    frozen,
    model_call,
    state_dict_fingerprint,
    torch_device,
)

FORMAT = "collapse_sim.chgnet/1"


def _quiet():
    """CHGNet prints progress (parameter counts, devices, every epoch): kept out of the run's output."""
    return contextlib.redirect_stdout(io.StringIO())


def _saved(path: Path) -> dict | None:
    """The contents of a model file this kind saved (``CHGNetModel.save``); None for any other file."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - not a plain torch archive: CHGNet's own format, or not a checkpoint
        return None
    return data if isinstance(data, dict) and data.get("format") == FORMAT else None


def _network(data: dict) -> CHGNet:
    """The network a saved model file holds (its constructor arguments and state dict)."""
    with default_dtype(torch.float32), _quiet():
        network = CHGNet(**data["model_args"])
    network.load_state_dict(data["state_dict"])
    return network


def load_checkpoint(checkpoint: str) -> CHGNet:
    """The CHGNet of a published name, a model file this kind saved (continual fine-tuning) or
    CHGNet's own checkpoint file; a file that does not load is a one-line error."""
    with _quiet():
        if checkpoint in PUBLISHED:
            return CHGNet.load(model_name=checkpoint, use_device="cpu", verbose=False)
        path = Path(checkpoint).expanduser()
        if (data := _saved(path)) is not None:
            return _network(data)
        try:
            return CHGNet.from_file(str(path))
        except Exception as exc:  # pickle, zip and state-dict errors all mean: not a CHGNet checkpoint
            raise ValueError(f"model.checkpoint: {checkpoint!r} is not a CHGNet checkpoint "
                             f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None


def to_structure(atoms: Atoms, cutoff: float) -> Structure:
    """A pymatgen Structure of ``atoms``: the cell as it is when fully periodic; a molecule
    centred in a cube whose vacuum exceeds ``cutoff`` on every side."""
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.all():
        return Structure(Lattice(atoms.cell.array), atoms.numbers, atoms.positions, coords_are_cartesian=True)
    if pbc.any():
        raise ValueError(f"chgnet: {atoms.get_chemical_formula()} is periodic along some axes only; "
                         "CHGNet needs a full cell or none")
    positions = atoms.positions - atoms.positions.min(axis=0)
    side = float(np.ptp(atoms.positions, axis=0).max()) + 2 * cutoff + 2.0
    return Structure(Lattice.cubic(side), atoms.numbers, positions + (cutoff + 1.0), coords_are_cartesian=True)


class CHGNetModelCalculator(CHGNetCalculator):
    """CHGNet's ASE calculator over a private copy of an in-memory :class:`CHGNetModel`; its
    results come through the model's ``predict`` (same boxing of molecules, threads and
    determinism), with stress in eV/Å³ (ASE Voigt order) for fully periodic cells."""

    implemented_properties = ("energy", "free_energy", "forces", "stress")

    def __init__(self, model: CHGNetModel, **kwargs):
        with _quiet():
            super().__init__(model=model.network, use_device=model.settings.device, **kwargs)
        self.owner = model

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        calculate_by_predict(self, self.owner.predict, atoms, properties, system_changes)


class CHGNetModel:
    """A CHGNet. ``self.network`` is the ``chgnet.model.CHGNet``: the published weights until
    fitted (a pretrained model predicts before any fit), the fitted or loaded ones after."""

    capabilities: ClassVar[frozenset[str]] = frozenset({TRAINABLE, PRETRAINED, FEATURES})

    def __init__(self, settings: CHGNetSettings, threads: int | None = None):
        self.settings = settings
        self.threads = check_threads(threads)
        self.network: CHGNet | None = None
        self.fit_info: dict = {}
        self.history: list[dict] = []

    @property
    def _device(self) -> torch.device:
        return torch_device(self.settings.device)

    def _require(self) -> CHGNet:
        if self.network is None:
            if not self.settings.pretrained:
                raise RuntimeError("CHGNetModel (pretrained: false) has no weights yet: call fit() or load() first")
            self.network = load_checkpoint(self.settings.checkpoint).to(self._device).eval()
        return self.network

    def _scope(self):
        """Torch state for one call: float32 (CHGNet's dtype), ``threads`` and deterministic kernels."""
        stack = contextlib.ExitStack()
        stack.enter_context(model_call(torch.float32, self.threads))
        stack.enter_context(warnings.catch_warnings())
        # CHGNet reads cell volumes from tensors that carry gradients (harmless, once per batch)
        warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad", category=UserWarning)
        return stack

    def _graphs(self, network: CHGNet, structures: Sequence[Atoms]) -> list:
        refuse_uncovered({s for a in structures for s in a.get_chemical_symbols()})
        cutoff = float(network.graph_converter.atom_graph_cutoff)
        with _quiet():
            return [network.graph_converter(to_structure(a, cutoff)) for a in structures]

    def _start(self, seed: int) -> CHGNet:
        """The network training starts from: the checkpoint's weights, or its architecture from
        ``torch.manual_seed(seed)`` (the caller holds the RNG fork)."""
        published = load_checkpoint(self.settings.checkpoint)
        if self.settings.pretrained:
            return published
        torch.manual_seed(seed)
        with _quiet():
            return CHGNet(**published.model_args)

    # ---------------------------------------------------------------- protocol
    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> CHGNetModel:
        """Fine-tune (or, ``pretrained: false``, train) on ``train``; returns ``self``.

        CHGNet's ``Trainer`` runs each pass (its loss, optimiser, schedule); the split is the
        shared ``train_valid_split`` and the batch order a ``torch.Generator`` seeded with
        ``seed``; torch, numpy and ``random`` are seeded with ``seed`` inside a fork of their
        states, so the same seed, data and ``threads`` give the same weights and the caller's
        RNG states are left as they were. Energies are given per atom, as CHGNet predicts them.
        With a validation split the pass with the lowest weighted validation MAE is kept.
        """
        s = self.settings
        train = list(train)
        if not train:
            raise ValueError("fit() needs at least one training structure")
        refuse_uncovered(set(species))
        train_idx, valid_idx = train_valid_split(len(train), s.valid_fraction, seed)
        targets = "efs" if s.stress_weight > 0 else "ef"
        if "s" in targets and any("stress" not in (a.calc.results if a.calc else {}) for a in train):
            raise ValueError("model.stress_weight > 0 needs stress labels on every training structure")
        py_state, np_state = random.getstate(), np.random.get_state()
        try:
            with self._scope(), torch.random.fork_rng(devices=[]), _quiet():
                random.seed(seed)
                np.random.seed(seed % 2**32)
                network = self._start(seed).to(self._device)
                init_hash = state_dict_fingerprint(network) if s.pretrained else None
                data = self._dataset(network, train)
                if s.atom_ref == "refit":
                    self._refit_atom_ref(network, data, train_idx)
                for name in s.freeze:
                    for p in getattr(network, name).parameters():
                        p.requires_grad_(False)
                network, n_passes, batches_per_pass, best_epoch = self._train(
                    network, data, train_idx, valid_idx, seed, targets, log_path)
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
        network.zero_grad(set_to_none=True)
        for p in network.parameters():
            p.requires_grad_(True)
        network.composition_model.requires_grad_(False)
        self.network = network.eval()
        self.fit_info = {"seed": int(seed), "checkpoint": s.checkpoint, "pretrained": s.pretrained,
                         "n_train": int(len(train_idx)), "n_valid": int(len(valid_idx)), "epochs": int(n_passes),
                         "optimizer_steps": int(n_passes * batches_per_pass), "best_epoch": best_epoch}
        if init_hash is not None:
            self.fit_info["init_hash"] = init_hash
        return self

    def _dataset(self, network: CHGNet, train: list[Atoms]) -> StructureData:
        cutoff = float(network.graph_converter.atom_graph_cutoff)
        stresses = None
        if self.settings.stress_weight > 0:  # StructureData reads VASP stress (kBar, compressive +)
            stresses = [-10.0 * np.asarray(a.calc.results["stress"]) / units.GPa for a in train]
            from ase.stress import voigt_6_to_full_3x3_stress

            stresses = [voigt_6_to_full_3x3_stress(v) if v.shape == (6,) else v for v in stresses]
        return StructureData(
            structures=[to_structure(a, cutoff) for a in train],
            energies=[energy_of(a) / len(a) for a in train],
            forces=[forces_of(a) for a in train], stresses=stresses,
            graph_converter=network.graph_converter, shuffle=False)

    def _refit_atom_ref(self, network: CHGNet, data: StructureData, idx: np.ndarray) -> None:
        """Per-element references of the training split's elements by least squares of the
        per-atom energies minus the network's share (the rest of the prediction); the other
        elements keep theirs."""
        graphs = [data[int(i)][0] for i in idx]
        energies = np.array([float(data[int(i)][1]["e"]) for i in idx])
        ref = network.composition_model
        with frozen(network):
            predicted = np.array([float(np.asarray(p["e"])) for p in _as_list(
                network.predict_graph(graphs, task="e", batch_size=self.settings.predict_batch))])
        with torch.no_grad():
            composition = ref._assemble_graphs(graphs).double().numpy()  # element fractions per structure
            weights = ref.fc.weight.detach().double().numpy()[0]
        present = np.flatnonzero(composition.any(axis=0))
        share = predicted - composition @ weights
        solved, *_ = np.linalg.lstsq(composition[:, present], energies - share, rcond=None)
        weights = weights.copy()
        weights[present] = solved
        with torch.no_grad():
            ref.fc.weight.copy_(torch.as_tensor(weights, dtype=ref.fc.weight.dtype).view(1, -1))

    def _train(self, network, data, train_idx, valid_idx, seed, targets, log_path):
        s = self.settings
        order = torch.Generator().manual_seed(seed)
        train_loader = DataLoader(data, batch_size=s.batch_size, collate_fn=collate_graphs,
                                  sampler=SubsetRandomSampler(train_idx.tolist(), generator=order))
        valid_loader = DataLoader(data, batch_size=s.predict_batch, collate_fn=collate_graphs,
                                  sampler=list(valid_idx.tolist()))
        batches_per_pass = math.ceil(len(train_idx) / s.batch_size)
        n_passes = passes(s.epochs, s.steps, batches_per_pass)
        trainer = Trainer(model=network, targets=targets, energy_loss_ratio=s.energy_weight,
                          force_loss_ratio=s.forces_weight, stress_loss_ratio=s.stress_weight,
                          optimizer=s.optimizer, scheduler=s.scheduler, epochs=max(n_passes, 1),
                          learning_rate=s.lr, weight_decay=s.weight_decay, use_device=s.device,
                          print_freq=10**9)
        weights = {"e": s.energy_weight, "f": s.forces_weight, "s": s.stress_weight}
        best = (float("inf"), None, None)  # (validation score, state, epoch)
        with EpochLog(log_path) as log:
            for epoch in range(n_passes):
                t0 = time.perf_counter()
                trainer.starting_epoch, trainer.epochs = epoch, epoch + 1
                trainer.train(train_loader, valid_loader, save_dir="",
                              train_composition_model=s.atom_ref == "train")
                history = trainer.training_history
                train_mae = sum(weights[k] * history[k]["train"][-1] for k in targets)
                metrics = None
                if len(valid_idx):
                    score = sum(weights[k] * history[k]["val"][-1] for k in targets)
                    metrics = {"valid_loss": score, "valid_mae_e_meV_per_atom": 1e3 * history["e"]["val"][-1],
                               "valid_mae_f_meV_per_A": 1e3 * history["f"]["val"][-1]}
                    if score < best[0]:
                        best = (score, copy.deepcopy(network.state_dict()), epoch + 1)
                log.add(epoch + 1, train_mae, float(trainer.optimizer.param_groups[0]["lr"]), metrics, t0)
        self.history = log.history
        if best[1] is not None:
            network.load_state_dict(best[1])
        return network, n_passes, batches_per_pass, best[2]

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies (energy eV, forces eV/Å, stress eV/Å³ in ASE Voigt order for fully
        periodic cells), ``predict_batch`` structures per forward pass."""
        network = self._require()
        structures = list(structures)
        if not structures:
            return []
        stress = any(a.pbc.all() for a in structures)
        with self._scope(), frozen(network):
            graphs = self._graphs(network, structures)
            out = _as_list(network.predict_graph(graphs, task="efs" if stress else "ef",
                                                 batch_size=self.settings.predict_batch))
        labelled = []
        for atoms, p in zip(structures, out):
            energy = float(np.asarray(p["e"])) * (len(atoms) if network.is_intensive else 1)
            voigt = full_3x3_to_voigt_6_stress(np.asarray(p["s"], dtype=float) * units.GPa) if atoms.pbc.all() else None
            labelled.append(attach_labels(atoms, energy, np.asarray(p["f"], dtype=float), voigt))
        return labelled

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, 64): per structure, the mean over its atoms of the last interaction block's atom
        features after the readout norm (what CHGNet's energy readout sees; ``crystal_fea``)."""
        network = self._require()
        structures = list(structures)
        if not structures:
            return np.zeros((0, network.atom_fea_dim))
        with self._scope(), frozen(network):
            graphs = self._graphs(network, structures)
            out = _as_list(network.predict_graph(graphs, task="e", return_crystal_feas=True,
                                                 batch_size=self.settings.predict_batch))
        pooled = np.stack([np.asarray(p["crystal_fea"], dtype=float) for p in out])
        if network.mlp_first:  # CHGNet sums the features it pools for a per-atom readout
            pooled /= np.array([len(a) for a in structures], dtype=float)[:, None]
        return pooled

    def calculator(self) -> Calculator:
        """CHGNet's ASE calculator on a private copy of the network."""
        private = CHGNetModel(self.settings, threads=self.threads)
        private.network = copy.deepcopy(self._require())
        return CHGNetModelCalculator(private)

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits of the state dict (names, dtypes, shapes, bytes, in name order)."""
        return state_dict_fingerprint(self._require())

    def save(self, path: Path) -> None:
        """One torch file (CHGNet's constructor arguments and state dict, fit summary), atomically."""
        network = self._require()
        data = {"format": FORMAT, "model_args": network.model_args,
                "state_dict": {k: v.detach().to("cpu") for k, v in network.state_dict().items()},
                "fit_info": self.fit_info}
        with replacing(Path(path)) as tmp:
            torch.save(data, tmp)

    @classmethod
    def load(cls, path: Path, settings: CHGNetSettings, threads: int | None = None) -> CHGNetModel:
        """The model saved at ``path``; the architecture comes from the file, the device from ``settings``."""
        obj = cls(settings, threads=threads)
        data = _saved(Path(path))
        if data is None:
            raise ValueError(f"{path}: not a collapse_sim CHGNet model file")
        obj.network = _network(data).to(obj._device).eval()
        obj.fit_info = data.get("fit_info", {})
        return obj


def _as_list(prediction) -> list[dict]:
    """``predict_graph`` returns a dict for one graph, a list for several."""
    return [prediction] if isinstance(prediction, dict) else list(prediction)
