"""Learning curves of a scenario's generation-0 model: is it converged, or limited by its
optimiser steps or its data?

Collapse is measured as the excess error of later generations over generation 0, so a
generation 0 far from its own plateau confounds "less real data" with "less training". The
check trains the scenario's model exactly as its generation 0 (same real data, same training
seed) and again at other optimiser budgets and training-set sizes, and measures each on the
run's own probe sets. Budgets are multiples of the scenario's (``model.steps``, or its epochs'
steps on generation 0's data); sizes are multiples of ``real_data.n_structures``, plus the
reference model's size.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapse_sim.runtime.atomic import write_csv

#: the scenario's own point counts as converged when more steps lower its ID force error by less
CONVERGED_WITHIN = 0.10
ERRORS = ("rmse_forces_id", "rmse_forces_ood", "rmse_energy_id", "rmse_energy_id_composition",
          "rmse_energy_ood_composition")
#: with a scenario ``teacher``: errors against its labels and CKNNA with its embeddings (k = metrics.k)
TEACHER_COLUMNS = ("rmse_forces_id_teacher", "rmse_forces_ood_teacher", "cknna_teacher_id", "cknna_teacher_ood")
COLUMNS = ("seed", "n_structures", "own", "steps", "budget", "train_seconds", *ERRORS, *TEACHER_COLUMNS)


@dataclass(frozen=True)
class Point:
    """One training of the ladder: ``steps`` optimiser steps, or None for the scenario's own
    settings (generation 0 at its size, the reference model at its)."""

    seed: int
    n_structures: int
    steps: int | None


def ladder(scenario, base: int, budgets: list[float], sizes: list[float], seeds: list[int]) -> list[Point]:
    """Every point but generation 0 itself: ``budgets`` x ``base`` steps at ``sizes`` x the real
    data, and the reference model as the scenario trains it."""
    n0 = scenario.real_data.n_structures
    counts = sorted({max(2, round(f * n0)) for f in sizes})
    steps = sorted({max(1, round(b * base)) for b in budgets})
    points = [Point(seed, n, s) for seed in seeds for n in counts for s in steps]
    return points + [Point(seed, scenario.reference_size, None) for seed in seeds]


def _train_point(job) -> dict:
    """Train one point of the ladder and measure it on the probes, and against the teacher's
    labels and embeddings if given (runs as one task)."""
    from collapse_sim import models
    from collapse_sim.measure.accuracy import probe_rmse
    from collapse_sim.measure.representation import model_metrics
    from collapse_sim.models.base import FEATURES, capabilities
    from collapse_sim.runtime.rng import child_seed

    scenario, point, real, probes, (teacher_labels, teacher_embeddings) = job
    if point.steps is not None:
        settings = scenario.model.model_copy(update={"steps": point.steps})
        scenario = scenario.model_copy(update={"model": settings})
    with tempfile.TemporaryDirectory(prefix="collapse-sim-converge-") as tmp:
        model, seconds = models.fit(scenario, real, child_seed(point.seed, "train", 0), Path(tmp) / "train.log")
    errors = probe_rmse(model, probes, teacher_labels)
    if teacher_embeddings and FEATURES in capabilities(model):
        embeddings = {p: model.embed(probes[p]) for p in teacher_embeddings}
        errors |= model_metrics(embeddings, {"teacher": teacher_embeddings}, scenario.metrics.k, [])
    return {"seed": point.seed, "n_structures": point.n_structures, "own": int(point.steps is None),
            "steps": int(model.fit_info["optimizer_steps"]), "train_seconds": round(seconds, 2)} | \
        {c: errors.get(c, float("nan")) for c in ERRORS + TEACHER_COLUMNS}


def _teacher_task(job) -> tuple[dict, dict]:
    """The teacher's labels and embeddings of the probes (one task: the teacher may be large)."""
    from collapse_sim.measure.reference import teacher_view

    labels, embeddings, _ = teacher_view(*job)
    return labels, embeddings


def run_convergence(ctx, budgets: list[float], sizes: list[float], seeds: list[int]) -> list[dict]:
    """The rows of the ladder, sorted by seed, size and steps. Generation 0 of each seed is
    trained first, exactly as the run trains it (same real data, same seed); its optimiser
    steps are the base of the budgets. The real data of any size is what generation 0 of that
    seed would draw at that size (same random key)."""
    from collapse_sim.measure.catalogue import PROBES
    from collapse_sim.measure.probes import ensure_probes
    from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures

    sc = ctx.scenario
    probes = ensure_probes(ctx, PROBES)  # what the rows report: a held-out set would be labelled for nothing
    teacher = (ctx.executor.map(_teacher_task, [(sc, probes)], cpus=sc.ray.cpus_per_training,
                                gpus=sc.ray.gpus_per_training)[0] if sc.teacher else (None, {}))
    data = {}

    def train(points: list[Point]) -> list[dict]:
        for seed, n in sorted({(p.seed, p.n_structures) for p in points} - set(data)):
            provenance = oracle_provenance(sc, 0, "converge", seed)
            data[seed, n] = oracle_structures(ctx, sc.real_data, n, (seed, "real", 0), provenance).structures
        jobs = [(sc, p, data[p.seed, p.n_structures], probes, teacher) for p in points]
        return ctx.executor.map(_train_point, jobs, cpus=sc.ray.cpus_per_training, gpus=sc.ray.gpus_per_training)

    n0 = sc.real_data.n_structures
    rows = train([Point(seed, n0, None) for seed in seeds])
    base = rows[0]["steps"]
    rows += train(ladder(sc, base, budgets, sizes, seeds))
    for row in rows:
        row["budget"] = row["steps"] / base
    return sorted(rows, key=lambda r: (r["seed"], r["n_structures"], r["steps"], r["own"]))


def _mean(rows: list[dict], column: str, **match) -> float:
    values = [r[column] for r in rows if all(r[k] == v for k, v in match.items())]
    return float(np.mean(values)) if values else float("nan")


def summarise(rows: list[dict], scenario) -> dict:
    """Generation 0's errors (mean over seeds), its size's plateau (the lowest mean ID force error
    over the budgets) and whether generation 0 lies within ``CONVERGED_WITHIN`` of it."""
    n0, n_ref = scenario.real_data.n_structures, scenario.reference_size
    ladder_rows = [r for r in rows if not r["own"]]
    curves = {(r["n_structures"], r["steps"]) for r in ladder_rows}
    mean_id = {key: _mean(ladder_rows, "rmse_forces_id", n_structures=key[0], steps=key[1]) for key in curves}
    own = {c: _mean(rows, c, own=1, n_structures=n0) for c in ("steps", *ERRORS)}
    plateau = min([v for (n, _), v in mean_id.items() if n == n0] + [own["rmse_forces_id"]])
    (best_n, best_steps), best = min(mean_id.items(), key=lambda item: item[1])
    return {
        "scenario": scenario.name,
        "seeds": sorted({r["seed"] for r in rows}),
        "generation_0": {"n_structures": n0} | own | {"steps": int(own["steps"])},
        "plateau_rmse_forces_id": plateau,
        "gap_to_plateau": own["rmse_forces_id"] / plateau - 1.0,
        "converged": own["rmse_forces_id"] <= (1.0 + CONVERGED_WITHIN) * plateau,
        "best": {"n_structures": best_n, "steps": best_steps, "rmse_forces_id": best},
        "reference_model": {"n_structures": n_ref, "steps": int(_mean(rows, "steps", own=1, n_structures=n_ref))}
        | {c: _mean(rows, c, own=1, n_structures=n_ref) for c in ERRORS},
    }


def write_outputs(root: Path, rows: list[dict], summary: dict) -> None:
    """``curves.csv`` (one row per training), ``summary.json`` and ``curves.png``."""
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "curves.csv", rows, COLUMNS, digits=4)
    (root / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(rows, summary, root / "curves.png")


def plot(rows: list[dict], summary: dict, path: Path) -> None:
    """ID and OOD force RMSE against optimiser steps, one line per training-set size (mean over
    seeds, seeds' range shaded); generation 0 marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    ladder_rows = [r for r in rows if not r["own"]]
    for ax, probe in zip(axes, ("id", "ood")):
        column = f"rmse_forces_{probe}"
        for n in sorted({r["n_structures"] for r in ladder_rows}):
            group = [r for r in ladder_rows if r["n_structures"] == n]
            steps = sorted({r["steps"] for r in group})
            values = [[r[column] for r in group if r["steps"] == s] for s in steps]
            line, = ax.plot(steps, [np.mean(v) for v in values], "o-", label=f"{n} structures")
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=line.get_color(),
                            alpha=0.15)
        for key, marker, label in (("generation_0", "k*", "generation 0"), ("reference_model", "kD", "reference")):
            point = summary[key]
            ax.plot([point["steps"]], [point[column]], marker, markersize=11 if marker == "k*" else 7,
                    label=f"{label} ({point['n_structures']} structures)")
        ax.set_xscale("log")
        ax.set_xlabel("optimiser steps")
        ax.set_ylabel(f"{probe.upper()} force RMSE (meV/Å)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{summary['scenario']}: generation 0 {summary['gap_to_plateau']:+.0%} from its plateau "
                 f"({len(summary['seeds'])} seed(s))")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(summary: dict) -> str:
    """The summary as the lines the command prints."""
    g = summary["generation_0"]
    verdict = "converged" if summary["converged"] else "NOT converged"
    return "\n".join([
        f"generation 0: {g['n_structures']} structures, {g['steps']} optimiser steps: ID force RMSE "
        f"{g['rmse_forces_id']:.1f} meV/Å, OOD {g['rmse_forces_ood']:.1f} meV/Å, ID energy (composition-fitted) "
        f"{g['rmse_energy_id_composition']:.1f} meV/atom",
        f"plateau at {g['n_structures']} structures: {summary['plateau_rmse_forces_id']:.1f} meV/Å; generation 0 is "
        f"{summary['gap_to_plateau']:+.1%} from it: {verdict} (within {CONVERGED_WITHIN:.0%})",
        f"lowest ID force RMSE on the ladder: {summary['best']['rmse_forces_id']:.1f} meV/Å at "
        f"{summary['best']['n_structures']} structures, {summary['best']['steps']} steps",
        f"reference model ({summary['reference_model']['n_structures']} structures, "
        f"{summary['reference_model']['steps']} steps): ID force RMSE "
        f"{summary['reference_model']['rmse_forces_id']:.1f} meV/Å",
    ])
