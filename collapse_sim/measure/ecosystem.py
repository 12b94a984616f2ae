"""The ecosystem of labs, measured (arXiv 2512.03750's protocol on our labs): per commons
condition, seed and generation, the lab × lab alignment (CKNNA with ``commons.k``, dCor), the
information-imbalance matrix, the monoculture index and how strongly the labs group by
architecture versus by data source; per seed and probe set, the tree of every model (labs ×
generations × conditions; generation 0, shared by the conditions, once).

Read from the embeddings each generation saved (``embeddings_<probe>.npy``), so it needs no
model and can be rebuilt from a run directory at any time (``ecosystem_summary``).
"""
from __future__ import annotations

import functools
import json
import math

import numpy as np

from collapse_sim.measure.catalogue import PROBES
from collapse_sim.metrics.ecosystem import (
    alignment_matrix,
    group_separation,
    information_imbalance_pairs,
    monoculture_index,
)
from collapse_sim.metrics.tree import neighbor_joining, tree_distances
from collapse_sim.runtime.atomic import atomic_write_text

#: weight of the row profiles in the tree distance (the paper does not state it; CKNNA is
#: symmetric, so rows and columns agree and it has no effect)
TREE_ALPHA = 0.5
GROUPINGS = ("architecture", "data_source")


def json_finite(value):
    """JSON without NaN: undefined numbers are null."""
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compare_models(embeddings: list[np.ndarray], groups: dict[str, list[str]], k: int) -> dict:
    """The matrices and numbers of one set of models on one probe set."""
    cknna = alignment_matrix(embeddings, k=k)
    return dict(cknna=cknna.tolist(), dcor=alignment_matrix(embeddings, measure="dcor").tolist(),
                information_imbalance=information_imbalance_pairs(embeddings).tolist(),
                monoculture=monoculture_index(cknna),
                separation={name: group_separation(cknna, labels, alpha=TREE_ALPHA) for name, labels in groups.items()})


def ecosystem_summary(store, plan) -> dict:
    """Everything the report's Ecosystem section shows, as plain JSON data (``plan``: the run's
    ``collapse_sim.plan.Plan``)."""
    k = plan.scenario.commons.k
    labs = {s.lab.lab: {"architecture": s.lab.architecture, "data_source": s.lab.data_source}
            for s in plan.lineages if s.lab is not None}
    out = {"k": k, "tree_alpha": TREE_ALPHA, "labs": labs, "ecosystems": {}, "trees": {}}
    # every generation's embeddings serve its ecosystem's matrices and its seed's tree: read once
    load = functools.cache(lambda lineage, g, probe: np.load(store.embeddings_path(lineage, g, probe)))
    tree_models: dict[int, dict[str, tuple]] = {}  # seed -> model name -> (lineage, generation, lab)
    for ecosystem in plan.ecosystems:
        if not ecosystem.commons:
            continue
        name, members = ecosystem.name, [plan.lineage(member) for member in ecosystem.members]
        role = members[0].lab
        groups = {g: [getattr(m.lab, g) for m in members] for g in GROUPINGS}
        generations = {}
        for g in range(min(len(store.completed(m.name)) for m in members)):
            generations[g] = {probe: compare_models([load(m.name, g, probe) for m in members],
                                                    groups, k) for probe in PROBES}
            for m in members:
                model = f"{m.lab.lab}.g{g}" + ("" if g == 0 else f".{m.lab.commons}")
                tree_models.setdefault(m.seed, {}).setdefault(model, (m.name, g, m.lab.lab))
        out["ecosystems"][name] = {"seed": members[0].seed, "commons": role.commons,
                                   "labs": [m.lab.lab for m in members], "generations": generations}
    for seed, models in tree_models.items():
        names = list(models)
        out["trees"][str(seed)] = {"models": names, "lab": [lab for _, _, lab in models.values()]}
        for probe in PROBES:
            embeddings = [load(lineage, g, probe) for lineage, g, _ in models.values()]
            cknna = alignment_matrix(embeddings, k=k)
            distances = tree_distances(cknna, alpha=TREE_ALPHA)
            groups = {grouping: [labs[lab][grouping] for _, _, lab in models.values()] for grouping in GROUPINGS}
            out["trees"][str(seed)][probe] = {
                "newick": neighbor_joining(distances, names) if len(names) >= 3 else None,
                "separation": {g: group_separation(cknna, labels, distances=distances) for g, labels in groups.items()}}
    return json_finite(out)


def write_ecosystem(store, plan) -> dict:
    """``ecosystem_summary`` written to the run directory (ecosystem.json)."""
    summary = ecosystem_summary(store, plan)
    atomic_write_text(store.ecosystem_path, json.dumps(summary, indent=1))
    return summary
