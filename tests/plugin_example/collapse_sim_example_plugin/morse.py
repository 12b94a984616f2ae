"""morse: a Morse pair potential fitted to energies and forces, behind collapse_sim's Model protocol.

E = Σ_i E0[Z_i] + Σ_{pairs i<j, r < r_cut} V(r_ij),
V(r) = D [(1 - exp(-a (r - r0)))² - 1] · fc(r),   fc(r) = (1 + cos(π r / r_cut)) / 2.

One (D, a, r0) for every pair of elements and one reference energy E0 per element. ``fit`` is
nonlinear least squares (scipy) of the per-atom energies and the force components over
(D, a, r0); for each trial the E0 are the linear least-squares answer (variable projection).
It is deterministic (the seed is not used) and takes milliseconds for tens of small cells.
An element of ``species`` absent from the training data gets E0 = 0; an element neither
trained on nor listed in ``species`` is refused by ``predict`` with one line naming it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.neighborlist import neighbor_list
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt

from collapse_sim.data.structures import attach_labels
from collapse_sim.models import KINDS, ModelSettingsBase
from collapse_sim.models.base import FEATURES, TRAINABLE

FORMAT = "collapse_sim_example_plugin.morse/1"


class MorseSettings(ModelSettingsBase):
    """A Morse pair potential (one D, a, r0 for all pairs; E0 per element) fitted by least
    squares to per-atom energies and force components. Every field has a default: ``{kind: morse}``
    is a complete model block."""

    kind: Literal["morse"]
    r_cut: PositiveFloat = Field(5.0, description="Å: cutoff of the pair terms (smooth cosine switch)")
    force_weight: NonNegativeFloat = Field(1.0, description="Å: weight of force residuals (eV/Å) against "
                                                            "per-atom energy residuals (eV/atom)")
    n_shells: PositiveInt = Field(8, description="radial shells of the embedding (the pair energy per shell)")


def _switch(r: np.ndarray, r_cut: float) -> tuple[np.ndarray, np.ndarray]:
    return 0.5 * (1.0 + np.cos(np.pi * r / r_cut)), -0.5 * np.pi / r_cut * np.sin(np.pi * r / r_cut)


def pair_energy(r: np.ndarray, params: np.ndarray, r_cut: float) -> tuple[np.ndarray, np.ndarray]:
    """V(r) and dV/dr for pair distances ``r``; ``params`` = (D, a, r0)."""
    depth, stiffness, r0 = params
    decay = np.exp(-stiffness * (r - r0))
    morse, dmorse = depth * ((1.0 - decay) ** 2 - 1.0), 2.0 * depth * stiffness * (1.0 - decay) * decay
    fc, dfc = _switch(r, r_cut)
    return morse * fc, dmorse * fc + morse * dfc


class _Pairs:
    """The directed pairs of a list of structures, concatenated: ``atom`` (index into all atoms),
    ``structure`` (which structure), ``r`` and ``vector`` (from the atom to its neighbour)."""

    def __init__(self, structures: Sequence[Atoms], r_cut: float):
        atom, structure, r, vector, offset = [], [], [], [], 0
        for k, atoms in enumerate(structures):
            i, _, d, D = neighbor_list("ijdD", atoms, r_cut)
            atom.append(i + offset)
            structure.append(np.full(len(i), k))
            r.append(d)
            vector.append(D.reshape(-1, 3))
            offset += len(atoms)
        self.n_atoms, self.n_structures = offset, len(structures)
        self.atom, self.structure = np.concatenate(atom), np.concatenate(structure)
        self.r, self.vector = np.concatenate(r), np.concatenate(vector)

    def energies_forces(self, params: np.ndarray, r_cut: float) -> tuple[np.ndarray, np.ndarray]:
        """Pair energy of each structure and forces on all atoms (n_atoms, 3)."""
        v, dv = pair_energy(self.r, params, r_cut)
        energies = 0.5 * np.bincount(self.structure, weights=v, minlength=self.n_structures)
        forces = np.zeros((self.n_atoms, 3))
        np.add.at(forces, self.atom, (dv / self.r)[:, None] * self.vector)
        return energies, forces


def _periodic(atoms: Atoms) -> bool:
    return bool(np.all(atoms.pbc)) and atoms.cell.rank == 3


def evaluate(atoms: Atoms, params: np.ndarray, e0: dict[str, float], r_cut: float, stress: bool):
    """Energy, forces and (if asked) the stress (1/V) ∂E/∂ε in ASE's Voigt order."""
    unknown = sorted(set(atoms.get_chemical_symbols()) - set(e0))
    if unknown:
        raise ValueError(f"morse model: element(s) {', '.join(unknown)} were neither in its training data "
                         f"nor in its species ({', '.join(e0)})")
    i, _, r, vector = neighbor_list("ijdD", atoms, r_cut)
    v, dv = pair_energy(r, params, r_cut)
    energy = 0.5 * v.sum() + sum(e0[s] for s in atoms.get_chemical_symbols())
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, (dv / r)[:, None] * vector)
    sigma = None
    if stress:
        full = 0.5 * np.einsum("p,pa,pb->ab", dv / r, vector, vector) / atoms.get_volume()
        sigma = full[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
    return float(energy), forces, sigma


class MorseCalculator(Calculator):
    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, params: np.ndarray, e0: dict[str, float], r_cut: float, **kwargs):
        super().__init__(**kwargs)
        self.params, self.e0, self.r_cut = np.asarray(params, dtype=float), dict(e0), r_cut

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        if want_stress and not _periodic(self.atoms):
            raise PropertyNotImplementedError("stress needs a fully periodic cell")
        energy, forces, stress = evaluate(self.atoms, self.params, self.e0, self.r_cut, want_stress)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if stress is not None:
            self.results["stress"] = stress


class MorseModel:
    """See the module docstring. ``params`` (D eV, a 1/Å, r0 Å) and ``e0`` after fit/load."""

    capabilities = frozenset({TRAINABLE, FEATURES})

    def __init__(self, settings: MorseSettings, threads: int | None = None):
        self.settings, self.threads = settings, threads
        self.params: np.ndarray | None = None
        self.e0: dict[str, float] = {}
        self.fit_info: dict = {}

    def _require(self) -> np.ndarray:
        if self.params is None:
            raise RuntimeError("MorseModel has no parameters yet: call fit() or load() first")
        return self.params

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> MorseModel:
        """Least squares of per-atom energies and ``force_weight`` × force components."""
        from scipy.optimize import least_squares

        train = list(train)
        if not train:
            raise ValueError("fit() needs at least one training structure")
        r_cut, weight = self.settings.r_cut, self.settings.force_weight
        elements = sorted({s for a in train for s in a.get_chemical_symbols()} | set(species))
        counts = np.array([[a.get_chemical_symbols().count(e) for e in elements] for a in train], dtype=float)
        sizes = counts.sum(axis=1)
        energies = np.array([a.get_potential_energy() for a in train])
        forces = np.concatenate([a.get_forces() for a in train])
        pairs = _Pairs(train, r_cut)

        def reference(pair: np.ndarray) -> np.ndarray:
            return np.linalg.lstsq(counts, energies - pair, rcond=None)[0]

        def residuals(params: np.ndarray) -> np.ndarray:
            pair, predicted = pairs.energies_forces(params, r_cut)
            error = (pair + counts @ reference(pair) - energies) / sizes
            return np.concatenate([error, weight * (predicted - forces).ravel()])

        nearest = np.percentile(pairs.r, 5) if len(pairs.r) else r_cut / 2
        start = np.array([0.5, 1.5, min(nearest, 0.9 * r_cut)])
        result = least_squares(residuals, start, bounds=([1e-4, 0.05, 0.1], [100.0, 20.0, r_cut]),
                               x_scale="jac")
        self.params = result.x
        self.e0 = dict(zip(elements, map(float, reference(pairs.energies_forces(result.x, r_cut)[0]))))
        self.fit_info = {"cost": float(result.cost), "evaluations": int(result.nfev), "n_train": len(train)}
        if log_path is not None:
            Path(log_path).write_text(json.dumps(self.fit_info) + "\n")
        return self

    def _evaluate(self, atoms: Atoms, stress: bool):
        return evaluate(atoms, self._require(), self.e0, self.settings.r_cut, stress)

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies: energy, forces, and stress for fully periodic cells."""
        return [attach_labels(a, *self._evaluate(a, stress=_periodic(a))) for a in structures]

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, n_shells): the pair energy per atom in each radial shell (Gaussian shells evenly
        spaced up to r_cut, each pair shared among them by weight): the model's own view of a
        structure, invariant to rotation, translation and atom order."""
        params, r_cut, n = self._require(), self.settings.r_cut, self.settings.n_shells
        centres, width = np.linspace(0.0, r_cut, n + 1)[1:], r_cut / n
        out = np.zeros((len(structures), n))
        for k, atoms in enumerate(structures):
            _, _, r, _ = neighbor_list("ijdD", atoms, r_cut)
            if len(r):
                shares = np.exp(-0.5 * ((r[:, None] - centres[None, :]) / width) ** 2)
                shares /= shares.sum(axis=1, keepdims=True)
                out[k] = 0.5 * (pair_energy(r, params, r_cut)[0] @ shares) / len(atoms)
        return out

    def calculator(self) -> Calculator:
        return MorseCalculator(self._require(), self.e0, self.settings.r_cut)

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits over r_cut, the float64 parameters and the reference energies."""
        digest = hashlib.sha256(json.dumps({"r_cut": self.settings.r_cut, "e0": self.e0}, sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self._require(), dtype="<f8").tobytes())
        return "sha256:" + digest.hexdigest()[:16]

    def save(self, path: Path) -> None:
        """One JSON file; floats as their exact reprs, so a loaded model predicts the same bits."""
        data = {"format": FORMAT, "r_cut": self.settings.r_cut, "params": [float(p) for p in self._require()],
                "e0": self.e0, "fit_info": self.fit_info}
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path, settings: MorseSettings, threads: int | None = None) -> MorseModel:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a morse model file")
        if data["r_cut"] != settings.r_cut:
            raise ValueError(f"{path}: saved r_cut {data['r_cut']} differs from the settings' {settings.r_cut}")
        model = cls(settings, threads=threads)
        model.params, model.e0, model.fit_info = np.array(data["params"]), data["e0"], data.get("fit_info", {})
        return model


KINDS.register(MorseSettings, MorseModel)
