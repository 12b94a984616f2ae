"""Generation × generation CKNNA matrices per lineage, from the probe embeddings the run saved.

Every measured generation stores its model's embeddings of the probe sets
(``gen-NNN/embeddings_<probe>.npy``, written by the loop). The report reads those arrays
(``numpy.load`` without pickle) and never loads a model: a model file is a pickled torch
module, i.e. code, and a report must be safe to build from a run directory someone sent you.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collapse_sim.report.rundata import LineageData, RunData
from collapse_sim.scenario import MetricSettings
from collapse_sim.store import gen_name

PROBE = "id"  # the heatmaps compare generations on the in-distribution probes
#: lineages whose heatmaps a report draws at most (bounds the report's build time)
DEFAULT_MAX_HEATMAP_LINEAGES = 16
#: CKNNA neighbours for a run whose scenario does not say (an unreadable scenario.yaml): the settings' default
DEFAULT_K: int = MetricSettings.model_fields["k"].default


def embeddings_file(lineage: LineageData, generation: int) -> Path:
    return lineage.files(generation).embeddings(PROBE)


@dataclass
class Heatmap:
    run: RunData
    lineage: LineageData
    generations: list[int]
    matrix: np.ndarray  # (G, G) CKNNA, NaN where embeddings were missing or CKNNA failed
    k: int
    n_probe: int


@dataclass
class HeatmapResult:
    heatmaps: list[Heatmap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    generations_read: int = 0


def _select_lineages(runs: list[RunData], cap: int) -> tuple[list[tuple[RunData, LineageData]], int]:
    """Up to ``cap`` lineages, spread over runs and policies: every policy's first seed first."""
    candidates = []
    for r_index, run in enumerate(runs):
        for lin in run.lineages.values():
            if any(embeddings_file(lin, g).is_file() for g in lin.generations):
                seeds = sorted({l.seed or 0 for l in run.lineages.values() if l.policy == lin.policy})
                rank = seeds.index(lin.seed or 0) if (lin.seed or 0) in seeds else 0
                candidates.append((rank, r_index, lin.policy, lin.name, run, lin))
    candidates.sort(key=lambda c: c[:4])
    chosen = candidates[:cap] if cap >= 0 else candidates
    chosen.sort(key=lambda c: (c[1], c[2], c[3]))
    return [(c[4], c[5]) for c in chosen], len(candidates)


def _read(lin: LineageData, g: int, run: RunData, notes: list[str]) -> np.ndarray | None:
    path = embeddings_file(lin, g)
    if not path.is_file():
        notes.append(f"{run.label}/{lin.name}: {gen_name(g)} has no saved probe embeddings; its row is blank")
        return None
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        notes.append(f"{run.label}/{lin.name}: {gen_name(g)} probe embeddings are unreadable "
                     f"({type(exc).__name__}); its row is blank")
        return None
    if array.ndim != 2 or not np.isfinite(array).all():
        notes.append(f"{run.label}/{lin.name}: {gen_name(g)} probe embeddings are not a finite (n, p) array; "
                     "its row is blank")
        return None
    return array.astype(np.float64)


def alignment_heatmaps(runs: list[RunData], *, k: int | None = None,
                       max_lineages: int = DEFAULT_MAX_HEATMAP_LINEAGES) -> HeatmapResult:
    """CKNNA matrices of up to ``max_lineages`` lineages, computed on one torch thread: the
    arrays are small (probe structures x embedding width), so a call is ~1 ms of arithmetic
    and torch's intra-op thread pool only adds synchronisation, which on cores busy with
    other work cost ~50 ms per call (2 threads, 30 x 32 embeddings: the 1,936 calls of a
    50-lineage study's report took 50 s, on one thread 0.7 s; benchmarks/bench_report.py).
    Same numbers either way; the caller's thread count is restored."""
    from collapse_sim.runtime.torch_state import num_threads

    with num_threads(1):
        return _alignment_heatmaps(runs, k=k, max_lineages=max_lineages)


def _alignment_heatmaps(runs: list[RunData], *, k: int | None, max_lineages: int) -> HeatmapResult:
    from collapse_sim.metrics import cknna
    from collapse_sim.metrics.alignment import CKNNA_ROWS_PER_K

    start = time.perf_counter()
    result = HeatmapResult()
    selected, total = _select_lineages(runs, max_lineages)
    for run in runs:
        if not any(r is run for r, _ in selected) and run.lineages:
            result.notes.append(f"{run.label}: no generation saved probe embeddings (metrics disabled?); "
                                "heatmaps skipped")
    if total > len(selected):
        result.notes.append(f"Heatmaps are drawn for {len(selected)} of {total} lineages (cap: --max-heatmap-lineages "
                            f"{max_lineages}; each policy's first seed comes first), to bound the report's build time.")
    too_few: set[str] = set()
    for run, lin in selected:
        run_k = k or recorded_k(run)
        gens = sorted(lin.generations)
        embeddings = [_read(lin, g, run, result.notes) for g in gens]
        result.generations_read += sum(e is not None for e in embeddings)
        n_probe = max((len(e) for e in embeddings if e is not None), default=0)
        if n_probe < CKNNA_ROWS_PER_K * run_k:
            if run.label not in too_few:
                too_few.add(run.label)
                result.notes.append(f"{run.label}: {n_probe} ID probe structures are too few for CKNNA with "
                                    f"k={run_k} (need at least {CKNNA_ROWS_PER_K} k = {CKNNA_ROWS_PER_K * run_k}); "
                                    "heatmaps skipped")
            continue
        n = len(gens)
        matrix = np.full((n, n), np.nan)
        for i in range(n):  # every ordered pair: CKNNA is only nearly symmetric (kNN ties)
            for j in range(n):
                if embeddings[i] is None or embeddings[j] is None:
                    continue
                try:
                    matrix[i, j] = cknna(embeddings[i], embeddings[j], k=run_k)
                except ValueError as exc:
                    result.notes.append(f"{run.label}/{lin.name}: CKNNA(gen {gens[i]}, gen {gens[j]}) failed: {exc}")
        if n:
            result.heatmaps.append(Heatmap(run, lin, gens, matrix, run_k, n_probe))
    result.seconds = time.perf_counter() - start
    return result


def recorded_k(run: RunData) -> int:
    """The CKNNA neighbour count the run measured with (its scenario's ``metrics.k``), so the
    heatmaps compare generations as the run's own alignment columns did; ``DEFAULT_K`` when the
    scenario does not say."""
    metrics = (run.scenario or {}).get("metrics")
    k = metrics.get("k") if isinstance(metrics, dict) else None
    return k if isinstance(k, int) and not isinstance(k, bool) and k >= 1 else DEFAULT_K
