"""What every generation is measured against: the probe sets, the reference model's
embeddings and the real-data statistics, loaded once per lineage task."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from collapse_sim.data.io import read_structures
from collapse_sim.measure.catalogue import HELD_OUT, PROBES
from collapse_sim.store import RunStore


@dataclass
class Yardsticks:
    """Descriptors are standardised with the reference real data's per-feature mean and
    spread, and the Vendi kernel bandwidth is fixed from the reference too: diversity of
    different generations is then measured with one ruler (a bandwidth taken from each set
    itself would hide a set shrinking as a whole)."""

    probes: dict[str, list[Atoms]]
    real_descriptors: np.ndarray  # standardised SOAP of the reference real data: the coverage target
    real_force_p99: float
    vendi_bandwidth: float
    reference_embeddings: dict[str, np.ndarray]  # empty if the reference model has no features capability
    describe: Callable[[list[Atoms]], np.ndarray]  # structures -> standardised descriptors
    teacher_labels: dict[str, list[Atoms]] = field(default_factory=dict)  # the probes as the teacher labels them
    teacher_embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # empty without a teacher with features
    held_out: dict[str, list[Atoms]] = field(default_factory=dict)  # {HELD_OUT: structures} if the scenario has one

    @classmethod
    def load(cls, store: RunStore, scenario) -> Yardsticks | None:
        """From the run directory, once the probes and the reference are committed; None when
        the scenario's metrics are disabled (no probes, no reference)."""
        if not scenario.metrics.enabled:
            return None
        ref = store.reference
        info = json.loads(ref.info.read_text())
        with np.load(ref.scaling) as scaling:
            center, scale = scaling["center"], scaling["scale"]
        raw = descriptor_fn(scenario)
        embedded = all(ref.embeddings(p).exists() for p in PROBES)
        taught = scenario.teacher is not None
        teacher_embedded = taught and all(ref.teacher_embeddings(p).exists() for p in PROBES)
        held_out = (HELD_OUT,) if scenario.probes.held_out is not None else ()
        return cls({p: read_structures(store.probe_path(p)) for p in PROBES}, np.load(ref.descriptors),
                   info["force_p99"], info["vendi_bandwidth"],
                   {p: np.load(ref.embeddings(p)) for p in PROBES} if embedded else {},
                   lambda structures: (raw(structures) - center) / scale,
                   {p: read_structures(ref.teacher_labels(p)) for p in (*PROBES, *held_out)} if taught else {},
                   {p: np.load(ref.teacher_embeddings(p)) for p in PROBES} if teacher_embedded else {},
                   {p: read_structures(store.probe_path(p)) for p in held_out})


def descriptor_fn(scenario) -> Callable[[list[Atoms]], np.ndarray]:
    """Structures -> per-structure SOAP descriptors (``metrics.soap_*``) over the system's species."""
    from collapse_sim import systems
    from collapse_sim.metrics import structure_descriptors

    species = systems.make(scenario.system).species()
    m = scenario.metrics
    return lambda structures: structure_descriptors(structures, species=species, r_cut=m.soap_r_cut,
                                                    n_max=m.soap_n_max, l_max=m.soap_l_max)


def standardise(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Centre, per-feature scale and median pairwise distance of the reference descriptors."""
    center = raw.mean(axis=0)
    spread = raw.std(axis=0)
    scale = spread + 1e-6 * max(float(spread.max()), 1e-12)  # constant features must not blow up
    z = (raw - center) / scale
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))[np.triu_indices(len(z), 1)]
    return center, scale, float(np.median(d))
