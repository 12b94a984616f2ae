"""The reference model and the real-data statistics, made once per run: a model trained on
a larger real set (the "ref" alignment target), and the standardisation, force tail and
Vendi bandwidth of that real data (the rulers of every data metric)."""
from __future__ import annotations

import json

import numpy as np
from ase import Atoms

from collapse_sim import models
from collapse_sim.data.io import write_structures
from collapse_sim.data.structures import forces_of
from collapse_sim.measure.accuracy import prediction_rmse, probe_rmse
from collapse_sim.measure.catalogue import PROBES
from collapse_sim.measure.probes import embed_probes, ensure_probes, probe_oracle, probe_oracle_calls
from collapse_sim.measure.yardsticks import descriptor_fn, standardise
from collapse_sim.models.base import FEATURES, capabilities
from collapse_sim.oracles.labelling import named_oracle, oracle_name, oracle_provenance, oracle_structures
from collapse_sim.runtime.rng import child_seed


def ensure_reference(ctx) -> None:
    """Make and commit the reference directory unless the run already has it."""
    sc, store = ctx.scenario, ctx.store
    if store.reference_dir.is_dir():
        return
    seed = sc.probes.seed
    labeller = named_oracle(sc, sc.reference_model.labels)
    real, calls = oracle_structures(ctx, sc.real_data, sc.reference_size, (seed, "reference"),
                                    oracle_provenance(sc, -1, "reference", seed, oracle=labeller), oracle=labeller)
    measured = ensure_probes(ctx)  # with a held-out set, which only the teacher is measured on
    probes = {p: measured[p] for p in PROBES}
    probe_calls = probe_oracle_calls(store)
    with store.staging_reference() as out:
        teacher, teacher_info = label_by_teacher(sc, measured, out)
        model, seconds = models.fit(sc, real, child_seed(seed, "train", "reference"), out.train_log)
        model.save(out.model)
        write_structures(out.train, real)
        if FEATURES in capabilities(model):  # else no "ref" alignment target (the rows say why)
            embed_probes(model, probes, out)
        raw = descriptor_fn(sc)(real)
        center, scale, bandwidth = standardise(raw)
        np.savez(out.scaling, center=center, scale=scale)
        np.save(out.descriptors, (raw - center) / scale)
        forces = np.concatenate([np.linalg.norm(forces_of(a), axis=1) for a in real])
        info = {"force_p99": float(np.percentile(forces, 99)), "vendi_bandwidth": bandwidth, "n_train": len(real),
                "train_seconds": seconds, "model_hash": model.fingerprint(),
                # run-level oracle cost (not any lineage's): the reference's real data plus the probe sets
                "oracle_calls_reference": calls, "oracle_calls_probes": probe_calls,
                "oracle_calls": calls + sum(probe_calls.values()),
                # who labelled what: the lineages' oracle, this model's real data, the probes (reference_oracle)
                "oracle": oracle_name(sc.oracle), "reference_labels": oracle_name(labeller),
                "probe_oracle": oracle_name(probe_oracle(sc))}
        info |= probe_rmse(model, probes, teacher) | teacher_info
        out.info.write_text(json.dumps(info, indent=1, sort_keys=True))


def label_by_teacher(sc, probes: dict[str, list[Atoms]], out) -> tuple[dict[str, list[Atoms]] | None, dict]:
    """The scenario's teacher on the probe structures (``teacher_view``): its labels and (if it
    has features) its embeddings of the ``PROBES`` sets, saved to the reference directory ``out``,
    and its own errors against the probe labels (``teacher_rmse_*``: how far the teacher is from
    the truth the probes carry). (None, {}) without a teacher."""
    if sc.teacher is None:
        return None, {}
    labels, embeddings, record = teacher_view(sc, probes)
    for p, structures in labels.items():
        write_structures(out.teacher_labels(p), structures)
    for p, array in embeddings.items():
        np.save(out.teacher_embeddings(p), array)
    errors = {f"teacher_{column}": value for column, value in prediction_rmse(labels, probes).items()}
    return labels, errors | record


def teacher_view(sc, probes: dict[str, list[Atoms]]) -> tuple[dict[str, list[Atoms]], dict[str, np.ndarray], dict]:
    """The scenario's teacher's labels of every probe set, its embeddings of the ``PROBES`` sets
    (none without the features capability) and its record (``teacher_hash``, ``teacher``)."""
    teacher = models.teacher(sc)
    labels = {p: teacher.predict(structures) for p, structures in probes.items()}
    embeddings = ({p: teacher.embed(structures) for p, structures in probes.items() if p in PROBES}
                  if FEATURES in capabilities(teacher) else {})
    return labels, embeddings, {"teacher_hash": teacher.fingerprint(), "teacher": teacher.source()}
