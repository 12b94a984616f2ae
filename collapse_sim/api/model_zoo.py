"""``zoo``: the saved models of finished runs compared as arXiv 2512.03750 compares its model
zoo — alignment against accuracy, and in- against out-of-distribution collapse — from Python
(``collapse-sim zoo``)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.errors import UsageError


@dataclass(frozen=True)
class ZooResult:
    root: Path  # models.csv, matrices.npz, summary.json, zoo.png
    models: list  # collapse_sim.zoo.ZooModel, in the matrices' order
    summary: dict  # the findings with their intervals (collapse_sim.zoo.analyse)

    def table(self) -> str:
        from collapse_sim.zoo import table

        return table(self.summary)


def zoo(run_dirs, out: str | os.PathLike = "zoo", *, generations: Sequence[int] | None = None,
        k: int | None = None, bootstrap: int = 2000, seed: int = 0, information_imbalance: bool = True) -> ZooResult:
    """Compare every saved model of ``run_dirs`` (runs made on the very same probe sets) at
    ``generations`` (default all), plus each run's reference model; CKNNA with ``k`` neighbours
    (default: the first run's ``metrics.k``); intervals from ``bootstrap`` resamples of whole
    lineages drawn with ``seed``. Writes ``out`` (a new folder)."""
    from collapse_sim.api.reports import _paths, load_runs
    from collapse_sim.metrics.alignment import CKNNA_ROWS_PER_K
    from collapse_sim.zoo import analyse, by_probe_count, collect, matrices, probe_fingerprint, write_outputs

    paths = _paths(run_dirs)
    root = Path(out)
    if root.exists():
        raise UsageError(f"--out {root}: already exists; choose another")
    if bootstrap < 100:
        raise UsageError(f"--bootstrap {bootstrap}: give at least 100 resamples")
    runs = load_runs(paths)
    try:
        prints = [probe_fingerprint(run.store) for run in runs]
    except OSError as exc:
        raise UsageError(f"{exc.filename}: a run without its probe sets cannot join a zoo") from None
    if any(p != prints[0] for p in prints):
        differ = next(run.path for run, p in zip(runs, prints) if p != prints[0])
        raise UsageError(f"{differ}: its probe sets differ from {runs[0].path}'s; a zoo compares models on the same "
                         "structures")
    k = k if k is not None else int(((runs[0].scenario or {}).get("metrics") or {}).get("k", 10))
    models = collect(runs, None if generations is None else set(generations))
    if len(models) < 4:
        raise UsageError(f"{', '.join(map(str, paths))}: {len(models)} model(s) with saved embeddings and force "
                         "errors on every probe set; a zoo needs at least 4")
    import numpy as np

    rows = int(np.load(models[0].embeddings["id"], mmap_mode="r").shape[0])
    if k < 1 or CKNNA_ROWS_PER_K * k > rows:
        raise UsageError(f"--k {k}: CKNNA needs 1 <= k and at least {CKNNA_ROWS_PER_K} k probe structures; "
                         f"the probe sets hold {rows}")
    mats = matrices(models, k, with_ii=information_imbalance)
    summary = analyse(models, mats, bootstrap, seed) | {"k": k, "runs": [str(p) for p in paths],
                                                        "by_probe_count": by_probe_count(models, k, seed)}
    root.mkdir(parents=True)
    write_outputs(root, models, mats, summary)
    return ZooResult(root, models, summary)
