"""``zoo``: the saved models of finished runs compared as arXiv 2512.03750 compares its model
zoo — alignment against accuracy, and in- against out-of-distribution collapse — from Python
(``collapse-sim zoo``)."""
from __future__ import annotations

import os
import shutil
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
        k: int | None = None, bootstrap: int = 2000, seed: int = 0, information_imbalance: bool = True,
        ladder: str | os.PathLike | None = None, ladder_models: int = 60) -> ZooResult:
    """Compare every saved model of ``run_dirs`` (runs made on the very same probe sets) at
    ``generations`` (default all), plus each run's reference model; CKNNA with ``k`` neighbours
    (default: the first run's ``metrics.k``); intervals from ``bootstrap`` resamples of whole
    lineages drawn with ``seed``. With ``ladder`` (a YAML file of probe sets,
    ``collapse_sim.zoo_ladder``), a sample of ``ladder_models`` models is also measured on probe
    sets at other distances from the training data. Writes ``out`` (a new folder)."""
    from collapse_sim.api.reports import _paths, load_runs
    from collapse_sim.metrics.alignment import CKNNA_ROWS_PER_K
    from collapse_sim.zoo import analyse, by_probe_count, collect, matrices, probe_fingerprint, write_outputs

    paths = _paths(run_dirs)
    if ladder is not None:
        from collapse_sim.zoo_ladder import load_ladder

        ladder = load_ladder(Path(ladder))
        if ladder_models < 4:
            raise UsageError(f"--ladder-models {ladder_models}: give at least 4")
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
    if ladder is not None:
        from collapse_sim.scenario import parse_scenario
        from collapse_sim.zoo_ladder import check, sample

        scenario = parse_scenario(runs[0].scenario, str(runs[0].path))
        chosen = sample(len(models), ladder_models, seed)
        check(scenario, ladder, k, [models[i] for i in chosen])
    mats = matrices(models, k, with_ii=information_imbalance)
    summary = analyse(models, mats, bootstrap, seed) | {"k": k, "runs": [str(p) for p in paths],
                                                        "by_probe_count": by_probe_count(models, k, seed)}
    root.mkdir(parents=True)
    try:
        if ladder is not None:
            summary["ood_ladder"] = _ladder(runs, scenario, models, chosen, mats, ladder, root, k, bootstrap,
                                            seed, information_imbalance)
        write_outputs(root, models, mats, summary)
    except BaseException:  # nothing half-written: a rerun with the same --out is not refused
        shutil.rmtree(root, ignore_errors=True)
        raise
    return ZooResult(root, models, summary)


def _ladder(runs, scenario, models, chosen, mats, ladder, root: Path, k: int, bootstrap: int, seed: int,
            information_imbalance: bool) -> list[dict]:
    """The ladder's probe sets (made by the first run's ``scenario`` and probe oracle, kept in
    ``root``/ladder/), measured with the ``chosen`` models (indices into ``models``; their ID and
    OOD numbers are their part of the zoo's ``mats``)."""
    from collapse_sim.context import RunContext
    from collapse_sim.data.io import write_structures
    from collapse_sim.models import parse_settings
    from collapse_sim.runtime.executor import LocalExecutor
    from collapse_sim.zoo_ladder import ladder_table, make_rungs, measure_rungs

    rungs = make_rungs(RunContext(scenario, root.resolve(), LocalExecutor()), ladder)
    (root / "ladder").mkdir()
    for name, structures in rungs.items():
        write_structures(root / "ladder" / f"{name}.extxyz", structures)
    settings = {run.label or run.name: parse_settings(run.scenario["model"]) for run in runs}
    errors, embeddings = measure_rungs([models[i] for i in chosen], settings, rungs)
    return ladder_table(models, chosen, mats, errors, embeddings, k, bootstrap, seed, information_imbalance)
