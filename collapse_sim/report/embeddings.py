"""Generation × generation CKNNA matrices per lineage, computed from the saved models.

Each generation's model is loaded with the scenario's model settings and embeds the run's
in-distribution probe set (``probes/id.extxyz``). Embeddings are cached in memory and on
disk, keyed by the SHA-256 of the model file and of the probe file, so generation 0 (one
model shared by every lineage of a seed) is embedded once, and a second report is fast.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from collapse_sim.report.rundata import LineageData, RunData
from collapse_sim.store import atomic_write_bytes, read_structures

MODEL_FILE = "model.model"
DEFAULT_K = 10


@dataclass
class Heatmap:
    run: RunData
    lineage: LineageData
    generations: list[int]
    matrix: np.ndarray  # (G, G) CKNNA, NaN where a model was missing or CKNNA failed
    k: int
    n_probe: int


@dataclass
class HeatmapResult:
    heatmaps: list[Heatmap] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    models_embedded: int = 0
    cache_hits: int = 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class EmbeddingCache:
    def __init__(self, cache_dir: Path | None):
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.memory: dict[str, np.ndarray] = {}
        self.computed = 0
        self.hits = 0

    def get(self, model_path: Path, probe_key: str, compute) -> np.ndarray:
        key = f"{_sha256(model_path)[:32]}-{probe_key[:32]}"
        if key in self.memory:
            self.hits += 1
            return self.memory[key]
        disk = self.cache_dir / f"emb-{key}.npy" if self.cache_dir else None
        if disk is not None and disk.is_file():
            try:
                array = np.load(disk)
                self.memory[key] = array
                self.hits += 1
                return array
            except (OSError, ValueError):
                pass  # a damaged cache entry: recompute
        array = np.asarray(compute(), dtype=np.float64)
        self.computed += 1
        self.memory[key] = array
        if disk is not None:
            try:
                import io

                buf = io.BytesIO()
                np.save(buf, array)
                atomic_write_bytes(disk, buf.getvalue())
            except OSError:
                pass  # an unwritable cache only costs time
        return array


def _cpu_settings(settings):
    """The scenario's settings with device=cpu when CUDA is not available here."""
    if getattr(settings, "device", "cpu") != "cpu":
        import torch

        if not torch.cuda.is_available():
            return settings.model_copy(update={"device": "cpu"})
    return settings


def _select_lineages(runs: list[RunData], cap: int) -> tuple[list[tuple[RunData, LineageData]], int]:
    """Up to ``cap`` lineages, spread over runs and policies: every policy's first seed first."""
    candidates = []
    for r_index, run in enumerate(runs):
        for lin in run.lineages.values():
            if any((lin.gen_dir(g) / MODEL_FILE).is_file() for g in lin.generations):
                seeds = sorted({l.seed or 0 for l in run.lineages.values() if l.policy == lin.policy})
                rank = seeds.index(lin.seed or 0) if (lin.seed or 0) in seeds else 0
                candidates.append((rank, r_index, lin.policy, lin.name, run, lin))
    candidates.sort(key=lambda c: c[:4])
    chosen = candidates[:cap] if cap >= 0 else candidates
    chosen.sort(key=lambda c: (c[1], c[2], c[3]))
    return [(c[4], c[5]) for c in chosen], len(candidates)


def alignment_heatmaps(runs: list[RunData], *, k: int | None = None, max_lineages: int = 16,
                       cache_dir: Path | None = None) -> HeatmapResult:
    from collapse_sim.metrics import cknna

    start = time.perf_counter()
    result = HeatmapResult()
    cache = EmbeddingCache(cache_dir)
    usable = []
    probe_sets: dict[str, tuple[list, str, int]] = {}
    for run in runs:
        if run.model_settings is None:
            result.notes.append(f"{run.label}: no usable model settings in scenario.yaml; heatmaps skipped")
            continue
        probe_path = run.path / "probes" / "id.extxyz"
        try:
            probes = read_structures(probe_path)
        except Exception as exc:  # noqa: BLE001
            result.notes.append(f"{run.label}: probes/id.extxyz is unreadable ({type(exc).__name__}); heatmaps skipped")
            continue
        if not probes:
            result.notes.append(f"{run.label}: no in-distribution probe set (probes/id.extxyz); heatmaps skipped")
            continue
        run_k = k or _scenario_k(run) or DEFAULT_K
        if len(probes) < run_k + 2:
            result.notes.append(f"{run.label}: {len(probes)} ID probe structures are too few for CKNNA with "
                                f"k={run_k} (need at least k+2 = {run_k + 2}); heatmaps skipped")
            continue
        probe_sets[run.label] = (probes, _sha256(probe_path), run_k)
        usable.append(run)
    selected, total = _select_lineages(usable, max_lineages)
    unembeddable: set[str] = set()  # runs whose model kind has no embed()
    if total > len(selected):
        result.notes.append(f"Heatmaps are drawn for {len(selected)} of {total} lineages (cap: --max-heatmap-lineages "
                            f"{max_lineages}; each policy's first seed comes first), to bound the report's build time.")
    for run, lin in selected:
        probes, probe_key, run_k = probe_sets[run.label]
        settings = _cpu_settings(run.model_settings)
        if run.label in unembeddable:
            continue
        gens = sorted(lin.generations)
        embeddings: list[np.ndarray | None] = []
        for g in gens:
            path = lin.gen_dir(g) / MODEL_FILE
            if not path.is_file():
                embeddings.append(None)
                result.notes.append(f"{run.label}/{lin.name}: gen-{g:03d} has no model file; its row is blank")
                continue
            try:
                embeddings.append(cache.get(path, probe_key, lambda p=path: _embed(settings, p, probes)))
            except NoEmbedding as exc:
                unembeddable.add(run.label)
                result.notes.append(f"{run.label}: {exc}; heatmaps skipped")
                break
            except Exception as exc:  # noqa: BLE001 - a damaged model file
                embeddings.append(None)
                result.notes.append(f"{run.label}/{lin.name}: gen-{g:03d} model could not be loaded or run "
                                    f"({type(exc).__name__}); its row is blank")
        if run.label in unembeddable:
            continue
        n = len(gens)
        matrix = np.full((n, n), np.nan)
        for i in range(n):  # every ordered pair: CKNNA is only nearly symmetric (kNN ties)
            for j in range(n):
                if embeddings[i] is None or embeddings[j] is None:
                    continue
                try:
                    value = cknna(embeddings[i], embeddings[j], k=run_k)
                except ValueError as exc:
                    result.notes.append(f"{run.label}/{lin.name}: CKNNA(gen {gens[i]}, gen {gens[j]}) failed: {exc}")
                    continue
                matrix[i, j] = value
        if n:
            result.heatmaps.append(Heatmap(run, lin, gens, matrix, run_k, len(probes)))
    result.seconds = time.perf_counter() - start
    result.models_embedded, result.cache_hits = cache.computed, cache.hits
    return result


def _scenario_k(run: RunData) -> int | None:
    metrics = (run.scenario or {}).get("metrics")
    k = metrics.get("k") if isinstance(metrics, dict) else None
    return k if isinstance(k, int) and k >= 1 else None


class NoEmbedding(Exception):
    """The run's model kind does not provide per-structure embeddings."""


def _embed(settings, path: Path, probes) -> np.ndarray:
    from collapse_sim import models

    kind = getattr(settings, "kind", "?")
    model = models.load(settings, path, threads=1)  # one thread: robust against a busy machine
    if not callable(getattr(model, "embed", None)):
        raise NoEmbedding(f"models of kind {kind!r} have no embed()")
    try:
        return model.embed(probes)
    except NotImplementedError as exc:
        raise NoEmbedding(f"models of kind {kind!r} do not embed structures ({exc})") from None
