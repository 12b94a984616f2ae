"""The reference model and the real-data statistics, made once per run: a model trained on
a larger real set (the "ref" alignment target), and the standardisation, force tail and
Vendi bandwidth of that real data (the rulers of every data metric)."""
from __future__ import annotations

import json

import numpy as np

from collapse_sim import models
from collapse_sim.data.io import write_structures
from collapse_sim.data.structures import forces_of
from collapse_sim.measure.accuracy import probe_rmse
from collapse_sim.measure.probes import embed_probes, ensure_probes, probe_oracle, probe_oracle_calls
from collapse_sim.measure.yardsticks import descriptor_fn, standardise
from collapse_sim.models.base import FEATURES, capabilities
from collapse_sim.oracles.labelling import oracle_name, oracle_provenance, oracle_structures
from collapse_sim.runtime.rng import child_seed


def ensure_reference(ctx) -> None:
    """Make and commit the reference directory unless the run already has it."""
    sc, store = ctx.scenario, ctx.store
    if store.reference_dir.is_dir():
        return
    seed = sc.probes.seed
    real, calls = oracle_structures(ctx, sc.real_data, sc.reference_size, (seed, "reference"),
                                    oracle_provenance(sc, -1, "reference", seed))
    probes = ensure_probes(ctx)
    probe_calls = probe_oracle_calls(store)
    with store.staging_reference() as out:
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
                # who labelled what: the lineages' (and this model's) oracle, and the probes' (reference_oracle)
                "oracle": oracle_name(sc.oracle), "probe_oracle": oracle_name(probe_oracle(sc))}
        info |= probe_rmse(model, probes)
        out.info.write_text(json.dumps(info, indent=1, sort_keys=True))
