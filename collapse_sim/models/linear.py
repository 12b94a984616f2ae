"""A linear potential behind the :class:`~collapse_sim.models.base.Model` protocol.

E(structure) = w · φ(structure), with φ the pair descriptor of :class:`PairBasis`:

* φ_0 = number of atoms (so w_0 is a per-atom reference energy, the E0 term);
* φ_b = Σ_{pairs i<j, r_ij < r_cut} g_b(r_ij), b = 1..n_basis, with
  g_b(r) = exp(-(r - c_b)² / (2 s²)) · fc(r) and fc(r) = (1 + cos(π r / r_cut)) / 2.

Because φ is a sum of smooth pair terms, forces F_i = -Σ_b w_b ∂φ_b/∂r_i and the stress
(1/V) ∂E/∂ε are analytic and cheap. ``fit`` is ordinary least squares of the energies on φ
(ridge with ``alpha`` > 0); forces are not fitted. With an oracle that is itself linear in
the same φ (:class:`collapse_sim.oracles.linear.LinearTruth`) and Gaussian label noise, this
is exactly the fixed-design linear regression of the model-collapse literature, which is
what ``collapse-sim validate-theory`` checks.

The model file is JSON (basis, weights as exact float reprs, fit info), written atomically.
No torch anywhere: this is also the cheap model for fast tests.
"""
from __future__ import annotations

import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.neighborlist import neighbor_list
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, model_validator

from collapse_sim.data.structures import attach_labels, energy_of
from collapse_sim.models.base import FEATURES, KINDS, TRAINABLE, ModelSettingsBase, periodic

FORMAT = "collapse_sim.linear/1"


class LinearSettings(ModelSettingsBase):
    """A linear potential: least squares of energies on fixed per-structure descriptors.

    Descriptor (``collapse_sim.models.linear.PairBasis``): column 0 counts the atoms (the E0
    term); column b = 1..n_basis is sum over pairs i<j closer than ``r_cut`` of
    exp(-(r_ij - c_b)^2 / (2 width^2)) * fc(r_ij), centres c_b evenly spaced from ``r_min``
    (step (r_cut - r_min)/n_basis), fc(r) = (1 + cos(pi r / r_cut))/2. Forces and stress are its
    analytic gradients. Only energies are fitted (the closed-form collapse laws are about them)."""

    kind: Literal["linear"]
    n_basis: PositiveInt = Field(4, description="radial Gaussians in the descriptor")
    r_cut: PositiveFloat = Field(5.0, description="Å: cutoff of the pair terms")
    r_min: NonNegativeFloat = Field(2.0, description="Å; centre of the first radial Gaussian")
    width: PositiveFloat | None = Field(None, description="Å; default: the centre spacing")
    alpha: NonNegativeFloat = Field(0.0, description="ridge penalty alpha*|w|^2 (0 = ordinary least squares)")

    @model_validator(mode="after")
    def _check_range(self) -> LinearSettings:
        if self.r_min >= self.r_cut:
            raise ValueError(f"r_min={self.r_min} must be below r_cut={self.r_cut}")
        return self

    @property
    def basis(self) -> dict:
        """The descriptor's settings (what an oracle must share for the linear laws to be exact)."""
        return {"n_basis": self.n_basis, "r_cut": self.r_cut, "r_min": self.r_min, "width": self.width}


_BRUTE_FORCE_LIMIT = 2_000_000  # atom pairs x periodic images handled by dense numpy


def pair_list(atoms: Atoms, r_cut: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Directed pairs closer than ``r_cut`` (periodic images included) as ASE's
    ``neighbor_list('ijdD')`` returns them, computed densely for small cells (where ASE's
    general algorithm costs milliseconds per structure) and by ASE otherwise."""
    n, pbc = len(atoms), np.asarray(atoms.pbc, dtype=bool)
    cell = atoms.cell.array
    reps = np.zeros(3, dtype=int)
    for k in np.flatnonzero(pbc):
        normal = np.cross(cell[(k + 1) % 3], cell[(k + 2) % 3])
        norm = np.linalg.norm(normal)
        height = abs(cell[k] @ normal) / norm if norm > 0 else 0.0
        if height <= 0:
            return neighbor_list("ijdD", atoms, r_cut)
        reps[k] = int(np.ceil(r_cut / height))
    n_images = int(np.prod(2 * reps + 1))
    if n * n * n_images > _BRUTE_FORCE_LIMIT:
        return neighbor_list("ijdD", atoms, r_cut)
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1) for r in reps], indexing="ij"), axis=-1).reshape(-1, 3)
    shifts = grid @ cell  # (m, 3)
    pos = atoms.positions
    D = pos[None, :, None, :] + shifts[None, None, :, :] - pos[:, None, None, :]  # (i, j, image, 3)
    d = np.sqrt(np.einsum("ijmk,ijmk->ijm", D, D))
    keep = d < r_cut
    zero = int(np.flatnonzero(~grid.any(axis=1))[0])
    keep[np.arange(n), np.arange(n), zero] = False  # an atom is not its own neighbour
    i, j, m = np.nonzero(keep)
    return i, j, d[i, j, m], D[i, j, m]


class PairBasis:
    """The descriptor φ (see the module docstring) and its gradients."""

    def __init__(self, n_basis: int = 4, r_cut: float = 5.0, r_min: float = 2.0, width: float | None = None):
        if n_basis < 1 or not 0 <= r_min < r_cut:
            raise ValueError(f"PairBasis needs n_basis >= 1 and 0 <= r_min < r_cut, got {n_basis}, {r_min}, {r_cut}")
        self.n_basis, self.r_cut, self.r_min = int(n_basis), float(r_cut), float(r_min)
        step = (self.r_cut - self.r_min) / self.n_basis
        self.width = float(width) if width is not None else step
        if self.width <= 0:
            raise ValueError(f"PairBasis width must be positive, got {self.width}")
        self.centres = self.r_min + step * np.arange(self.n_basis)

    @classmethod
    def from_settings(cls, settings: LinearSettings) -> PairBasis:
        return cls(**settings.basis)

    @property
    def n_features(self) -> int:
        return 1 + self.n_basis

    def as_dict(self) -> dict:
        return {"n_basis": self.n_basis, "r_cut": self.r_cut, "r_min": self.r_min, "width": self.width}

    def radial(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """g_b(r) and dg_b/dr, each (len(r), n_basis)."""
        r = np.asarray(r, dtype=float)[:, None]
        z = (r - self.centres[None, :]) / self.width
        gauss = np.exp(-0.5 * z**2)
        fc = 0.5 * (1.0 + np.cos(np.pi * r / self.r_cut))
        dfc = -0.5 * np.pi / self.r_cut * np.sin(np.pi * r / self.r_cut)
        return gauss * fc, gauss * (dfc - z / self.width * fc)

    def _pairs(self, atoms: Atoms):
        # every pair appears twice, as (i, j) and (j, i); D is the vector from i to j
        return pair_list(atoms, self.r_cut)

    def features(self, atoms: Atoms) -> np.ndarray:
        """φ(atoms), shape (n_features,)."""
        _, _, d, _ = self._pairs(atoms)
        g, _ = self.radial(d)
        return np.concatenate([[float(len(atoms))], 0.5 * g.sum(axis=0)])

    def jacobians(self, atoms: Atoms, stress: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """φ (d,), ∂φ/∂r (n_atoms, 3, d) and, if asked, (1/V) ∂φ/∂ε in ASE Voigt order (6, d)."""
        i, _, d, D = self._pairs(atoms)
        g, dg = self.radial(d)
        phi = np.concatenate([[float(len(atoms))], 0.5 * g.sum(axis=0)])
        # φ_b = ½ Σ_(i,j) g_b(r_ij) over directed pairs and ∂r_ij/∂r_i = -D_ij/r_ij, so
        # ∂φ_b/∂r_i = -Σ_j g_b'(r_ij) D_ij / r_ij (both directions of a pair counted)
        per_pair = (dg / d[:, None])[:, None, :] * D[:, :, None]  # (pairs, 3, n_basis)
        grad = np.zeros((len(atoms), 3, self.n_features))
        np.add.at(grad[:, :, 1:], i, -per_pair)
        virial = None
        if stress:
            sigma = 0.5 * np.einsum("pab,pc->acb", per_pair, D) / atoms.get_volume()  # (3, 3, n_basis)
            virial = np.zeros((6, self.n_features))
            virial[:, 1:] = sigma[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]]
        return phi, grad, virial

    def cached_jacobians(self, atoms: Atoms, stress: bool):
        """:meth:`jacobians`, remembered per structure (the fixed design is relabelled every
        generation); read-only arrays."""
        key = (tuple(self.as_dict().values()), stress, _structure_key(atoms))
        hit = _CACHE.get(key)
        if hit is None:
            hit = self.jacobians(atoms, stress)
            for array in hit:
                if array is not None:
                    array.flags.writeable = False
            _CACHE[key] = hit
            if len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(key)
        return hit

    def design(self, structures: Sequence[Atoms]) -> np.ndarray:
        """The design matrix X (n_structures, n_features)."""
        rows = [self.cached_jacobians(a, stress=False)[0] for a in structures]
        return np.array(rows, dtype=float).reshape(len(structures), self.n_features)

    def evaluate(self, atoms: Atoms, weights: np.ndarray, stress: bool, cached: bool = False
                 ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """Energy w·φ, forces -∂E/∂r_i (n_atoms, 3) and, if asked, the stress (1/V) ∂E/∂ε (ASE Voigt order)."""
        weights = np.asarray(weights, dtype=float)
        phi, grad, virial = (self.cached_jacobians if cached else self.jacobians)(atoms, stress)
        return float(phi @ weights), -(grad @ weights), (virial @ weights if stress else None)


_CACHE: OrderedDict[tuple, tuple] = OrderedDict()
_CACHE_SIZE = 20_000


def _structure_key(atoms: Atoms) -> bytes:
    digest = hashlib.sha1(np.ascontiguousarray(atoms.numbers, dtype="<i8").tobytes())
    for array in (atoms.positions, atoms.cell.array):
        digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    digest.update(np.asarray(atoms.pbc, dtype=bool).tobytes())
    return digest.digest()


class LinearCalculator(Calculator):
    """ASE calculator for E = w·φ: energy, forces and (fully periodic cells) stress."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, basis: PairBasis, weights, **kwargs):
        super().__init__(**kwargs)
        self.basis = basis
        self.weights = np.asarray(weights, dtype=float).copy()
        if self.weights.shape != (basis.n_features,):
            raise ValueError(f"weights need {basis.n_features} entries (1 + n_basis), got {self.weights.shape[0]}")

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        want_stress = "stress" in properties
        if want_stress and not periodic(self.atoms):
            raise PropertyNotImplementedError("stress needs a fully periodic cell")
        energy, forces, stress = self.basis.evaluate(self.atoms, self.weights, stress=want_stress)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if stress is not None:
            self.results["stress"] = stress


class LinearModel:
    """Least squares of energies on :class:`PairBasis` descriptors. ``weights`` after fit/load.
    Any element is accepted: the descriptor counts atoms and pairs whatever their species."""

    capabilities = frozenset({TRAINABLE, FEATURES})

    def __init__(self, settings: LinearSettings, threads: int | None = None):
        self.settings = settings
        self.threads = threads  # accepted for the protocol; numpy here is single-shot and tiny
        self.basis = PairBasis.from_settings(settings)
        self.weights: np.ndarray | None = None
        self.fit_info: dict = {}

    def _require(self) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("LinearModel has no weights yet: call fit() or load() first")
        return self.weights

    def fit(self, train: Sequence[Atoms], seed: int, log_path: Path | None = None,
            species: Sequence[str] = ()) -> LinearModel:
        """OLS (``alpha`` = 0, minimum-norm if rank deficient) or ridge; deterministic, ``seed`` unused."""
        start = time.perf_counter()
        train = list(train)
        if not train:
            raise ValueError("fit() needs at least one training structure")
        X = self.basis.design(train)
        y = np.array([energy_of(a) for a in train])
        if self.settings.alpha > 0:
            self.weights = np.linalg.solve(X.T @ X + self.settings.alpha * np.eye(X.shape[1]), X.T @ y)
            rank = int(np.linalg.matrix_rank(X))
        else:
            self.weights, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
        residual = y - X @ self.weights
        per_atom = residual / np.array([len(a) for a in train])
        self.fit_info = {"seed": int(seed), "n_train": len(train), "rank": int(rank),
                         "rmse_energy_meV_per_atom": 1e3 * float(np.sqrt(np.mean(per_atom**2)))}
        if log_path is not None:
            log_path = Path(log_path)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            record = self.fit_info | {"seconds": time.perf_counter() - start}
            log_path.write_text(json.dumps(record) + "\n")
        return self

    def predict(self, structures: Sequence[Atoms]) -> list[Atoms]:
        """Labelled copies: energy, forces, and stress for fully periodic cells."""
        w = self._require()
        out = []
        for atoms in structures:
            energy, forces, stress = self.basis.evaluate(atoms, w, stress=periodic(atoms), cached=True)
            out.append(attach_labels(atoms, energy, forces, stress))
        return out

    def embed(self, structures: Sequence[Atoms]) -> np.ndarray:
        """(n, 1 + n_basis): φ scaled by the weights, i.e. each feature's share of the energy."""
        return self.basis.design(list(structures)) * self._require()[None, :]

    def calculator(self) -> Calculator:
        return LinearCalculator(self.basis, self._require())

    def summary(self) -> dict:
        """Fields this model adds to its generation's metrics row."""
        w = self._require()
        return {"linear_weight_norm": float(np.linalg.norm(w))}

    def fingerprint(self) -> str:
        """'sha256:' + 16 hex digits over the basis settings and the float64 weight bytes."""
        digest = hashlib.sha256(json.dumps(self.basis.as_dict(), sort_keys=True).encode())
        digest.update(np.ascontiguousarray(self._require(), dtype="<f8").tobytes())
        return "sha256:" + digest.hexdigest()[:16]

    def save(self, path: Path) -> None:
        """One JSON file (weights as exact float reprs), written atomically."""
        from collapse_sim.runtime.atomic import atomic_write_text

        data = {"format": FORMAT, "basis": self.basis.as_dict(), "weights": [float(v) for v in self._require()],
                "fit_info": self.fit_info}
        atomic_write_text(Path(path), json.dumps(data, indent=1))

    @classmethod
    def load(cls, path: Path, settings: LinearSettings, threads: int | None = None) -> LinearModel:
        data = json.loads(Path(path).read_text())
        if data.get("format") != FORMAT:
            raise ValueError(f"{path}: not a collapse_sim linear model file")
        obj = cls(settings, threads=threads)
        if data["basis"] != obj.basis.as_dict():
            raise ValueError(f"{path}: saved basis {data['basis']} differs from the settings' {obj.basis.as_dict()}")
        obj.weights = np.array(data["weights"], dtype=float)
        obj.fit_info = data.get("fit_info", {})
        return obj


KINDS.register(LinearSettings, LinearModel)
