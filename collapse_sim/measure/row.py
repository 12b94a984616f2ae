"""One generation's metrics row: accuracy on the probes, the embeddings' dimension and
alignment with generation 0, the previous generation and the reference, and the diversity
and tails of the training set and the sampled pool, and the sampled molecules' chemistry
(columns: ``catalogue``)."""
from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from collapse_sim.measure.accuracy import probe_rmse
from collapse_sim.measure.catalogue import PROBES
from collapse_sim.measure.data import bond_metrics, data_metrics
from collapse_sim.measure.probes import embed_probes
from collapse_sim.measure.representation import model_metrics
from collapse_sim.measure.yardsticks import Yardsticks
from collapse_sim.models.base import FEATURES, capabilities
from collapse_sim.runtime.torch_state import compute_threads
from collapse_sim.store import GenerationFiles


def measure_generation(model, yard: Yardsticks | None, k: int, out: GenerationFiles,
                       targets: dict[str, GenerationFiles], train: Sequence[Atoms], sampled: Sequence[Atoms],
                       real: Sequence[Atoms] = ()) -> dict:
    """The metrics of ``model`` and its data; its probe embeddings are saved to ``out``.
    ``targets``: committed (or this) generations to align with, by target name; ``real``: the
    lineage's real training structures, which the sampled molecules are compared with. The model's
    own ``summary()`` fields are always in the row; the suite only with yardsticks (metrics
    enabled)."""
    summary = model.summary() if hasattr(model, "summary") else {}
    if yard is None:
        return summary
    start, warnings = time.perf_counter(), []
    with compute_threads(getattr(model, "threads", None)):  # the task's threads: same bits under Ray and --local
        row = probe_rmse(model, yard.probes | yard.held_out, yard.teacher_labels)
        row |= representation_columns(model, yard, k, out, targets, warnings)
        for label, structures in (("train", train), ("sampled", sampled)):
            row |= data_metrics(structures, label, yard, k, warnings)
        row |= bond_metrics(sampled, real, warnings)
    return row | summary | {"metrics_seconds": time.perf_counter() - start, "metric_warnings": warnings}


def representation_columns(model, yard: Yardsticks, k: int, out: GenerationFiles, targets: dict[str, GenerationFiles],
                    warnings: list[str]) -> dict:
    """Embedding dimension and alignment columns: only for a model with the ``features``
    capability, aligned with each target that saved embeddings (a target without features has none)."""
    if FEATURES not in capabilities(model):
        kind = getattr(getattr(model, "settings", None), "kind", type(model).__name__)
        warnings.append(f"embedding: the {kind} model has no features capability: no embedding or alignment columns")
        return {}
    embeddings = embed_probes(model, yard.probes, out)
    others = {}
    if yard.reference_embeddings:
        others["ref"] = yard.reference_embeddings
    else:
        warnings.append("alignment_ref: the reference model has no features capability: no ref alignment columns")
    if yard.teacher_embeddings:
        others["teacher"] = yard.teacher_embeddings
    for name, files in targets.items():
        if all(files.embeddings(p).exists() for p in PROBES):
            others[name] = {p: np.load(files.embeddings(p)) for p in PROBES}
        else:
            warnings.append(f"alignment_{name}: that model saved no embeddings (no features capability): "
                            f"no {name} alignment columns")
    return model_metrics(embeddings, others, k, warnings)
