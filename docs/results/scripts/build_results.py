"""The results pages' numbers, made from committed data only.

    python docs/results/scripts/build_results.py extract RUN_DIR STUDY   # a finished run -> committed data
    python docs/results/scripts/build_results.py                         # data -> every table and figure
    python docs/results/scripts/build_results.py --check                 # list what is stale, write nothing

A study's data lives in ``docs/results/STUDY/data/``: per run, its ``scenario.yaml`` and its
``metrics.jsonl`` reduced to the columns the pages use (together a run directory that
``collapse-sim compare`` and ``report`` read), and the ``collapse-sim converge`` output of the
study's scenario under ``convergence/``. ``STUDIES`` below says which tables each study's page
shows; they are written to ``docs/results/STUDY/tables/*.csv`` and rendered into the page by its
``<!-- table: results/STUDY/tables/NAME.csv -->`` blocks (``docs/scripts/gen_docs.py`` renders
the blocks; ``tests/test_results_pages.py`` fails when a table differs from its data).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent
sys.path.insert(0, str(RESULTS.parents[1] / "docs" / "scripts"))

#: the columns a study's committed metrics keep: identity, the headline accuracy, data and
#: representation columns, cost
KEEP = ("lineage", "policy", "policy_kind", "seed", "generation", "n_train", "n_real", "n_synthetic",
        "oracle_calls", "oracle_calls_total", "optimizer_steps", "train_seconds", "generation_seconds",
        "rmse_forces_id", "rmse_forces_ood", "rmse_energy_id", "rmse_energy_ood", "rmse_energy_id_composition",
        "rmse_energy_ood_composition", "coverage_train", "vendi_train", "cknna_ref_id", "cknna_ref_ood",
        "cknna_gen0_id", "cknna_gen0_ood", "mknn_ref_id", "dcor_ref_id", "id_twonn_model_id", "id_twonn_model_ood",
        "model_hash")
#: fewer paired seeds than this: a difference is reported as preliminary, whatever its interval
SEEDS_FOR_A_CLAIM = 5


@dataclass(frozen=True)
class Trajectory:
    """Mean ± s.e. over seeds of ``column`` per policy at ``generations``."""

    name: str
    run: str
    column: str
    generations: tuple[int, ...]


@dataclass(frozen=True)
class Contrast:
    """Each policy − ``baseline`` of ``columns``, each seed's mean over ``window``, paired by seed."""

    name: str
    run: str
    columns: tuple[str, ...]
    window: tuple[int, int]
    baseline: str = "replace"


@dataclass(frozen=True)
class Convergence:
    """Learning curves (``collapse-sim converge`` output in data/FOLDER), per size and budget."""

    name: str = "convergence"
    folder: str = "convergence"


@dataclass(frozen=True)
class Figure:
    """Mean ± s.e. over seeds of ``columns`` per policy against generation, one panel each."""

    name: str
    run: str
    columns: tuple[str, ...]


@dataclass
class Study:
    tables: list = field(default_factory=list)
    figures: list = field(default_factory=list)


STUDIES = {
    "study-cu": Study([
        Convergence(),
        Trajectory("forces-id", "study-cu-compute", "rmse_forces_id", (0, 1, 2, 3, 4, 5, 6)),
        Trajectory("forces-ood", "study-cu-compute", "rmse_forces_ood", (0, 1, 2, 3, 4, 5, 6)),
        Trajectory("energy-id", "study-cu-compute", "rmse_energy_id_composition", (0, 1, 3, 6)),
        Trajectory("coverage", "study-cu-compute", "coverage_train", (0, 1, 3, 6)),
        Trajectory("cknna-ref-id", "study-cu-compute", "cknna_ref_id", (0, 1, 3, 6)),
        Contrast("contrasts-gen4-6", "study-cu-compute", ("rmse_forces_id", "rmse_forces_ood",
                                                          "rmse_energy_id_composition", "coverage_train",
                                                          "cknna_ref_id"), (4, 6)),
    ], [
        Figure("accuracy", "study-cu-compute", ("rmse_forces_id", "rmse_forces_ood", "coverage_train",
                                                "cknna_ref_id")),
    ]),
    "molecules": Study([
        Convergence(),
        Trajectory("forces-id", "molecules-strong", "rmse_forces_id", (0, 1, 2, 3)),
        Trajectory("forces-ood", "molecules-strong", "rmse_forces_ood", (0, 1, 2, 3)),
        Trajectory("energy-id", "molecules-strong", "rmse_energy_id_composition", (0, 1, 2, 3)),
        Trajectory("coverage", "molecules-strong", "coverage_train", (0, 1, 2, 3)),
        Trajectory("cknna-ref-id", "molecules-strong", "cknna_ref_id", (0, 1, 2, 3)),
        Contrast("contrasts-gen2-3", "molecules-strong", ("rmse_forces_id", "rmse_forces_ood",
                                                          "rmse_energy_id_composition", "coverage_train",
                                                          "cknna_ref_id"), (2, 3)),
    ], [
        Figure("accuracy", "molecules-strong", ("rmse_forces_id", "rmse_forces_ood", "coverage_train",
                                                "cknna_ref_id")),
    ]),
}


# ----------------------------------------------------------------------------- extract
def extract(run_dir: Path, study: str) -> Path:
    """Copy a finished run's scenario and reduced metrics into ``docs/results/STUDY/data/NAME``."""
    from collapse_sim.store import RunStore

    store = RunStore(run_dir)
    name = run_dir.resolve().name
    out = RESULTS / study / "data" / name
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(store.scenario_path, out / "scenario.yaml")
    lines = []
    for line in store.metrics_path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            lines.append(json.dumps({k: row[k] for k in KEEP if k in row}, sort_keys=True))
    (out / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if store.environment() is not None:
        machine = store.environment().get("machine", {})
        (out / "environment.json").write_text(json.dumps({"machine": machine}, indent=1, sort_keys=True) + "\n")
    return out


# ----------------------------------------------------------------------------- tables
def _fmt(value: float, digits: int = 3) -> str:
    """``digits`` significant digits, never in exponent notation; "—" for NaN."""
    if value != value:
        return "—"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _run(study: str, run: str):
    from collapse_sim.report.rundata import load_run

    return load_run(RESULTS / study / "data" / run)


def trajectory(study: str, t: Trajectory) -> str:
    from collapse_sim.report.statistics import summarise

    run = _run(study, t.run)
    header = ["policy", "seeds"] + [f"gen {g}" for g in t.generations]
    rows = []
    for policy in run.policies:
        cells, seeds = [], set()
        for g in t.generations:
            values = {r["seed"]: r[t.column] for r in run.rows
                      if r.get("policy") == policy and r["generation"] == g and r.get(t.column) is not None}
            seeds |= set(values)
            s = summarise(values.values())
            cells.append(f"{_fmt(s.mean)} ± {_fmt(s.sem, 2)}" if s.n > 1 else _fmt(s.mean))
        rows.append([policy, str(len(seeds))] + cells)
    return _csv(header, rows)


def verdict(d, higher_is_worse: bool | None) -> str:
    """The wording a difference earns: separated only where its 95 % interval excludes 0, and
    never a claim on fewer than ``SEEDS_FOR_A_CLAIM`` seeds."""
    if d.n < SEEDS_FOR_A_CLAIM:
        return f"preliminary ({d.n} seed{'' if d.n == 1 else 's'})"
    if not d.separated:
        return "not separated"
    lower = d.diff.mean < 0
    meaning = "" if higher_is_worse is None else (" (better)" if lower == higher_is_worse else " (worse)")
    return f"separated: {'lower' if lower else 'higher'}{meaning}"


def contrast(study: str, c: Contrast) -> str:
    from collapse_sim.measure.catalogue import UP, describe
    from collapse_sim.report.compare import compare

    result = compare([_run(study, c.run)], threshold=0.1, columns=list(c.columns), baseline=c.baseline,
                     window=c.window)
    header = ["metric", "policy", f"mean, gens {c.window[0]}–{c.window[1]}", f"− {c.baseline}", "95 % CI",
              "seeds", "reading"]
    rows = []
    for m in result.metrics:
        means = {s.policy: s.summary for s in m.policies}
        direction = describe(m.metric.column).degrade
        for x in m.contrasts:
            d = x.difference
            s = means[x.policy]
            rows.append([m.metric.column, x.policy, f"{_fmt(s.mean)} ± {_fmt(s.sem, 2)}", _fmt(d.diff.mean, 2),
                         f"{_fmt(d.diff.low, 2)} … {_fmt(d.diff.high, 2)}", str(d.n),
                         verdict(d, None if direction is None else direction == UP)])
    return _csv(header, rows)


def convergence(study: str, c: Convergence) -> str:
    from collapse_sim.report.statistics import summarise

    with open(RESULTS / study / "data" / c.folder / "curves.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    keys = sorted({(int(r["n_structures"]), int(r["steps"]), int(r["own"])) for r in rows})
    out = []
    for n, steps, own in keys:
        group = [r for r in rows if (int(r["n_structures"]), int(r["steps"]), int(r["own"])) == (n, steps, own)]
        cells = []
        for column in ("rmse_forces_id", "rmse_forces_ood", "rmse_energy_id_composition"):
            s = summarise(float(r[column]) for r in group)
            cells.append(f"{_fmt(s.mean)} ± {_fmt(s.sem, 2)}" if s.n > 1 else _fmt(s.mean))
        role = {1: "generation 0" if n == min(k[0] for k in keys if k[2]) else "reference model"}.get(own, "")
        out.append([str(n), str(steps), role, str(len(group)), *cells])
    return _csv(["structures", "optimiser steps", "as", "seeds", "ID force RMSE (meV/Å)", "OOD force RMSE (meV/Å)",
                 "ID energy RMSE, composition-fitted (meV/atom)"], out)


def figure(study: str, f: Figure) -> Path:
    """Draw ``f`` from the study's committed data into docs/results/STUDY/NAME.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from collapse_sim.measure.catalogue import describe
    from collapse_sim.report.statistics import summarise

    run = _run(study, f.run)
    fig, axes = plt.subplots(1, len(f.columns), figsize=(3.6 * len(f.columns), 3.4))
    for ax, column in zip(np.atleast_1d(axes), f.columns):
        for policy in run.policies:
            gens = sorted({r["generation"] for r in run.rows if r.get("policy") == policy})
            stats = [summarise(r[column] for r in run.rows if r.get("policy") == policy and r["generation"] == g
                               and r.get(column) is not None) for g in gens]
            mean = np.array([s.mean for s in stats])
            sem = np.nan_to_num(np.array([s.sem for s in stats]))
            line, = ax.plot(gens, mean, "o-", markersize=3, label=policy)
            ax.fill_between(gens, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
        metric = describe(column)
        ax.set_title(metric.label, fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel(metric.unit or "")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7)
    fig.tight_layout()
    path = RESULTS / study / f"{f.name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


RENDER = {Trajectory: trajectory, Contrast: contrast, Convergence: convergence}


def expected_tables() -> dict[Path, str]:
    """Every table CSV -> the text its committed data gives."""
    return {RESULTS / study / "tables" / f"{t.name}.csv": RENDER[type(t)](study, t)
            for study, spec in STUDIES.items() for t in spec.tables}


def stale_files() -> dict[Path, str]:
    """Tables, and the study pages showing them, whose file differs from what the data gives."""
    from doc_tables import DOCS, render_tables, stale

    tables = expected_tables()
    pages = {RESULTS / f"{study}.md": render_tables((RESULTS / f"{study}.md").read_text(encoding="utf-8"), DOCS,
                                                     pending=tables) for study in STUDIES}
    return stale(tables) | stale(pages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    ex = sub.add_parser("extract", help="copy a finished run's scenario and reduced metrics into a study's data")
    ex.add_argument("run_dir", type=Path)
    ex.add_argument("study")
    parser.add_argument("--check", action="store_true", help="list stale tables and pages, exit 1 if any")
    args = parser.parse_args(argv)
    if args.command == "extract":
        print(f"wrote {extract(args.run_dir, args.study)}")
        return 0
    files = stale_files()
    if not args.check:
        for study, spec in STUDIES.items():
            for f in spec.figures:
                print(f"drew: {figure(study, f).relative_to(RESULTS.parents[1])}")
            converged = RESULTS / study / "data" / "convergence" / "curves.png"
            if converged.is_file():
                shutil.copyfile(converged, RESULTS / study / "convergence.png")
    for path, text in files.items():
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(RESULTS.parents[1])}")
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return 1 if args.check and files else 0


if __name__ == "__main__":
    sys.exit(main())
