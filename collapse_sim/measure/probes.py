"""The probe sets: oracle-labelled structures, made once per run and shared by every
lineage, on which every model's accuracy and embeddings are measured (the same
structures for every generation, so curves compare like with like)."""
from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.data.io import read_structures, write_structures
from collapse_sim.measure.catalogue import HELD_OUT, PROBES
from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures
from collapse_sim.store import GenerationFiles


def probe_oracle(scenario):
    """The oracle settings that make and label the probe sets: the scenario's ``reference_oracle``
    if set (errors then measured against a physical reference while the lineages learn from a
    teacher), else its ``oracle``."""
    return scenario.reference_oracle or scenario.oracle


def probe_sets(scenario) -> dict[str, tuple]:
    """name -> (structure-set settings, system settings) of every probe set the scenario has:
    ``id`` and ``ood`` of its system, and ``held_out`` of its own system if set."""
    probes = scenario.probes
    sets = {name: (getattr(probes, name), scenario.system) for name in PROBES}
    if probes.held_out is not None:
        sets[HELD_OUT] = (probes.held_out, probes.held_out.system)
    return sets


def ensure_probes(ctx, names: Sequence[str] | None = None) -> dict[str, list[Atoms]]:
    """Every probe set (``probe_sets``; ``names``: these only), made (``md`` recipes driven by it)
    and labelled by ``probe_oracle`` on the first call and read back from the run directory (as
    later calls and resumed runs see them) ever after. The oracle evaluations each set cost go to
    ``store.probe_oracle_calls_path`` (a run-level cost: see ``probe_oracle_calls``)."""
    sc, store, probes = ctx.scenario, ctx.store, {}
    oracle = probe_oracle(sc)
    for name, (settings, system) in probe_sets(sc).items():
        if names is not None and name not in names:
            continue
        path = store.probe_path(name)
        if not path.exists():
            provenance = oracle_provenance(sc, -1, "probes", sc.probes.seed, sampler=f"probe-{name}", oracle=oracle)
            labelled = oracle_structures(ctx, settings, settings.n_structures, (sc.probes.seed, "probes", name),
                                         provenance, oracle=oracle, system=system)
            write_structures(path, labelled.structures)
            calls = probe_oracle_calls(store) | {name: labelled.oracle_calls}
            store.probe_oracle_calls_path.write_text(json.dumps(calls))
        probes[name] = read_structures(path)
    return probes


def probe_oracle_calls(store) -> dict[str, int]:
    """Oracle evaluations made for each probe set (empty for a run made before they were counted)."""
    path = store.probe_oracle_calls_path
    return json.loads(path.read_text()) if path.exists() else {}


def embed_probes(model, probes: dict[str, list[Atoms]], out: GenerationFiles) -> dict[str, np.ndarray]:
    """The model's per-structure embeddings of every probe set, also saved with its generation
    (alignment with later generations, the report's heatmaps)."""
    embeddings = {p: model.embed(structures) for p, structures in probes.items()}
    for p, array in embeddings.items():
        np.save(out.embeddings(p), array)
    return embeddings
