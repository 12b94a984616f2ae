"""Synthetic pre-training, measured: does pre-training a student on structures a teacher
labelled, then fine-tuning it on a few structures the truth labelled, beat training on those
few alone — and by how much, as the truth-labelled set grows?

The protocol of Gardner, Baker & Deringer (MLST 2024, arXiv 2307.15714), on a scenario whose
``oracle`` is the teacher and whose ``reference_oracle`` is the truth: per seed, ``synthetic``
teacher-labelled structures (made by the real-data recipes) pre-train the scenario's model
for ``pretrain_budget`` × its optimiser steps; then for each fine-tuning size n, the first n
of one truth-labelled draw train two students with the same seed and steps — one from scratch,
one starting from the pre-trained weights (its E0s fitted anew: the two oracles need not share
an energy zero). Both are measured on the run's probe sets (labelled by the truth). Sets of
different sizes are nested, so the curves differ by data, not by draw; the arms of a seed are
offered the same structures, so the comparison is paired by data (each arm draws its own
validation split and starting weights from its own seed, so that the arms are not one training
repeated).

A third arm, ``scratch-equal``, trains from scratch for the pre-training's and the fine-tuning's
steps together (the pre-training's as it ran, plus ``model.steps``; each training rounds its
budget up to whole passes, so the arms' counts agree to within one pass, and the rows record
them): when the scratch arm is limited by its optimiser steps rather than its data, the
pre-trained arm's advantage may be those extra steps, not what the teacher's labels taught, and
only this control tells the two apart.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collapse_sim.runtime.atomic import write_csv

COLUMNS = ("seed", "n_real", "arm", "steps", "train_seconds", "rmse_forces_id", "rmse_forces_ood",
           "rmse_energy_id_composition", "rmse_energy_ood_composition")
ERRORS = COLUMNS[5:]
ARMS = ("scratch", "scratch-equal", "pretrained")
CONTROLS = ("scratch", "scratch-equal")  # what the pre-trained arm is compared with


@dataclass(frozen=True)
class Job:
    """One training: ``arm`` 'pretrain' (on the teacher's data), 'scratch', 'scratch-equal' (as
    many steps as pre-training and fine-tuning together) or 'pretrained' (fine-tuned from
    ``init``) on ``structures``."""

    seed: int
    n_real: int
    arm: str
    structures: list
    steps: int | None
    init: str | None = None
    save: str | None = None


def _train(job_and_context) -> dict:
    """Train one job and measure it on the probes (one task)."""
    from collapse_sim import models
    from collapse_sim.measure.accuracy import probe_rmse
    from collapse_sim.runtime.rng import child_seed

    scenario, job, probes = job_and_context
    update = ({"init": job.init} if job.init else {}) | ({"steps": job.steps} if job.steps is not None else {})
    scenario = scenario.model_copy(update={"model": scenario.model.model_copy(update=update)})
    with tempfile.TemporaryDirectory(prefix="collapse-sim-pretrain-") as tmp:
        model, seconds = models.fit(scenario, job.structures, child_seed(job.seed, "train", job.arm, job.n_real),
                                    Path(tmp) / "train.log")
    if job.save:
        model.save(Path(job.save))
    errors = probe_rmse(model, probes)
    return {"seed": job.seed, "n_real": job.n_real, "arm": job.arm, "steps": int(model.fit_info["optimizer_steps"]),
            "train_seconds": round(seconds, 2)} | {c: errors.get(c, float("nan")) for c in ERRORS}


def run_pretraining(ctx, sizes: list[int], synthetic: int, pretrain_budget: float, seeds: list[int],
                    progress=lambda message: None) -> list[dict]:
    """Every training's row: the pre-trained model of each seed (arm 'pretrain', n_real 0), then
    every arm at every size. Pre-trained weights are kept in ``ctx.root``/pretrained/, the
    teacher- and truth-labelled sets of each seed in ``ctx.root``/data/.
    ``progress(message)`` hears of each stage (labelling takes most of the time)."""
    from collapse_sim.data.io import write_structures
    from collapse_sim.measure.catalogue import PROBES
    from collapse_sim.measure.probes import ensure_probes, probe_oracle
    from collapse_sim.oracles.labelling import oracle_provenance, oracle_structures

    sc, root = ctx.scenario, Path(ctx.root)
    probes = ensure_probes(ctx, PROBES)  # what the rows report: a held-out set would be labelled for nothing
    truth = probe_oracle(sc)
    base = sc.model.steps
    pretrain_steps = None if base is None else max(1, round(pretrain_budget * base))
    (root / "pretrained").mkdir(exist_ok=True)
    teacher_data, truth_data = {}, {}
    for seed in seeds:
        progress(f"seed {seed}: labelling {synthetic} structures with the teacher, {max(sizes)} with the truth")
        teacher_data[seed] = oracle_structures(ctx, sc.real_data, synthetic, (seed, "pretrain"),
                                               oracle_provenance(sc, -1, "pretrain", seed)).structures
        truth_data[seed] = oracle_structures(ctx, sc.real_data, max(sizes), (seed, "finetune"),
                                             oracle_provenance(sc, 0, "finetune", seed, oracle=truth),
                                             oracle=truth).structures
    (root / "data").mkdir(exist_ok=True)
    for seed in seeds:  # kept, so that further arms (another budget, another student) need no labelling
        write_structures(root / "data" / f"seed-{seed}-teacher.extxyz", teacher_data[seed])
        write_structures(root / "data" / f"seed-{seed}-truth.extxyz", truth_data[seed])
    paths = {seed: str(root / "pretrained" / f"seed-{seed}.model") for seed in seeds}
    jobs = [Job(seed, 0, "pretrain", teacher_data[seed], pretrain_steps, save=paths[seed]) for seed in seeds]
    cpus, gpus = sc.ray.cpus_per_training, sc.ray.gpus_per_training
    progress(f"pre-training {len(seeds)} model(s) for {pretrain_steps} steps")
    rows = ctx.executor.map(_train, [(sc, j, probes) for j in jobs], cpus=cpus, gpus=gpus)
    pretrained_for = {r["seed"]: r["steps"] for r in rows}  # as it ran: budgets round up to whole passes
    steps = lambda arm, seed: base + pretrained_for[seed] if arm == "scratch-equal" else None
    jobs = [Job(seed, n, arm, truth_data[seed][:n], steps(arm, seed), paths[seed] if arm == "pretrained" else None)
            for seed in seeds for n in sizes for arm in ARMS]
    progress(f"training {len(jobs)} students (scratch, scratch at equal steps and pre-trained, {len(sizes)} sizes)")
    rows += ctx.executor.map(_train, [(sc, j, probes) for j in jobs], cpus=cpus, gpus=gpus)
    return sorted(rows, key=lambda r: (r["seed"], r["n_real"], r["arm"]))


def _paired(by: dict, seeds: list, n: int, control: str, column: str) -> dict | None:
    """The pre-trained arm against ``control`` at size ``n``: both means and the paired relative
    reduction 1 − pretrained/control over seeds (mean, 95 % t interval, verdict); None when no
    seed has both."""
    from collapse_sim.report.statistics import SEPARATED
    from collapse_sim.report.statistics import summarise as over_seeds

    pairs = [(by[s, n, control][column], by[s, n, "pretrained"][column]) for s in seeds
             if (s, n, control) in by and (s, n, "pretrained") in by]
    if not pairs:
        return None
    reduction = over_seeds([1.0 - p / a for a, p in pairs])
    separated = len(pairs) >= 5 and (reduction.low > 0 or reduction.high < 0)
    return {"control": float(np.mean([a for a, _ in pairs])), "pretrained": float(np.mean([p for _, p in pairs])),
            "reduction": reduction.mean, "low": reduction.low, "high": reduction.high, "seeds": len(pairs),
            "verdict": SEPARATED if separated else ("preliminary" if len(pairs) < 5 else "not separated at 95 %")}


def summarise(rows: list[dict], scenario, synthetic: int, pretrain_budget: float) -> dict:
    """Per fine-tuning size, probe set and control arm (scratch; scratch at equal steps): the
    pre-trained arm against it, paired over seeds (``_paired``)."""
    seeds = sorted({r["seed"] for r in rows})
    sizes = sorted({r["n_real"] for r in rows if r["arm"] != "pretrain"})
    by = {(r["seed"], r["n_real"], r["arm"]): r for r in rows}
    out = []
    for n in sizes:
        entry = {"n_real": n, "steps": {arm: int(r["steps"]) for (s, size, arm), r in sorted(by.items())
                                        if size == n and s == seeds[0]}}
        for probe in ("id", "ood"):
            entry[probe] = {control: paired for control in CONTROLS
                            if (paired := _paired(by, seeds, n, control, f"rmse_forces_{probe}")) is not None}
        out.append(entry)
    pre = [r for r in rows if r["arm"] == "pretrain"]
    return {"scenario": scenario.name, "seeds": seeds, "synthetic": synthetic, "pretrain_budget": pretrain_budget,
            "pretrain_steps": int(pre[0]["steps"]) if pre else None,
            "pretrained_alone": {c: float(np.mean([r[c] for r in pre])) for c in ERRORS} if pre else {},
            "sizes": out}


def write_outputs(root: Path, rows: list[dict], summary: dict) -> None:
    """``rows.csv`` (one row per training), ``summary.json`` and ``pretraining.png``."""
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "rows.csv", rows, COLUMNS, digits=5)
    (root / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(rows, summary, root / "pretraining.png")


def plot(rows: list[dict], summary: dict, path: Path) -> None:
    """Force RMSE against the truth-labelled set's size, every arm (mean over seeds, seeds'
    range shaded), ID and OOD."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    sizes = [entry["n_real"] for entry in summary["sizes"]]
    for ax, probe in zip(axes, ("id", "ood")):
        column = f"rmse_forces_{probe}"
        for arm, style in zip(ARMS, ("s--", "^:", "o-")):
            values = [[r[column] for r in rows if r["arm"] == arm and r["n_real"] == n] for n in sizes]
            if not all(values):
                continue
            line, = ax.plot(sizes, [np.mean(v) for v in values], style, label=arm)
            ax.fill_between(sizes, [min(v) for v in values], [max(v) for v in values], color=line.get_color(),
                            alpha=0.15)
        ax.set_xscale("log")
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
        ax.set_xlabel("truth-labelled structures")
        ax.set_ylabel(f"{probe.upper()} force RMSE (meV/Å)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"{summary['scenario']}: pre-trained on {summary['synthetic']} teacher-labelled structures "
                 f"({len(summary['seeds'])} seed(s))")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(summary: dict) -> str:
    """The summary as the lines the command prints."""
    lines = [f"pre-trained on {summary['synthetic']} teacher-labelled structures "
             f"({summary['pretrain_steps']} steps), {len(summary['seeds'])} seed(s)",
             f"{'n':>5}  {'probe':5}  {'compared with (steps)':24}  {'its RMSE':>8}  {'pre-trained':>11}  "
             "reduction (95 % CI)"]
    for entry in summary["sizes"]:
        for probe in ("id", "ood"):
            for control, e in entry[probe].items():
                arm = f"{control} ({entry['steps'].get(control, '?')})"
                lines.append(f"{entry['n_real']:>5}  {probe:5}  {arm:24}  {e['control']:8.1f}  "
                             f"{e['pretrained']:11.1f}  {e['reduction']:+.1%} ({e['low']:+.1%} … {e['high']:+.1%}) "
                             f"{e['verdict']}")
    return "\n".join(lines)
