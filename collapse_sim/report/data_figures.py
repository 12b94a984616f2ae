"""The report's figures drawn from the runs' structure files rather than metrics rows: the
provenance of every training set and the drift of force and neighbour-distance distributions
(same conventions as ``figures``)."""
from __future__ import annotations

from collections import Counter

import matplotlib
import numpy as np
from matplotlib.patches import Patch

from collapse_sim.report.datasets import SetReader
from collapse_sim.report.figures import Plot, Style, _int_xaxis, _legend, new_figure, to_data_uri
from collapse_sim.report.rundata import finite
from collapse_sim.store import gen_name

REAL_COLOUR = "#555555"

MAX_PROVENANCE_PANELS = 12


def _provenance_lineages(style: Style) -> tuple[list, int]:
    """(run, lineage) pairs to draw: all when few, else every policy's first seeds first."""
    pairs = [(run, lin) for run in style.runs
             for lin in sorted(run.lineages.values(), key=lambda l: (l.policy, l.seed or 0, l.name))]
    if len(pairs) <= MAX_PROVENANCE_PANELS:
        return pairs, len(pairs)
    rank, seen = {}, {}
    for run, lin in pairs:
        key = (run.label, lin.policy)
        rank[(run.label, lin.name)] = seen.get(key, 0)
        seen[key] = seen.get(key, 0) + 1
    chosen = sorted(pairs, key=lambda p: rank[(p[0].label, p[1].name)])[:MAX_PROVENANCE_PANELS]
    keep = {(r.label, l.name) for r, l in chosen}
    return [p for p in pairs if (p[0].label, p[1].name) in keep], len(pairs)


def provenance(style: Style, reader: SetReader) -> tuple[Plot | None, list[str]]:
    panels = []  # (run, lineage, {gen: Counter or None}, row fallback)
    notes = []
    max_gen = 0
    chosen, total = _provenance_lineages(style)
    if total > len(chosen):
        notes.append(f"Provenance is drawn for {len(chosen)} of {total} lineages (each policy's first seeds).")
    for run, lin in chosen:
        rows = {(r["lineage"], r["generation"]): r for r in run.rows}
        comp = {}
        for g in lin.generations:
            summary = reader.get(lin.files(g).train, f"{run.label}/{lin.name}/{gen_name(g)}", geometry=False)
            if summary is not None and summary.n_structures:
                comp[g] = summary.composition
            elif (row := rows.get((lin.name, g))) is not None and finite(row.get("n_train")) is not None:
                n_real, n_syn = finite(row.get("n_real")) or 0, finite(row.get("n_synthetic")) or 0
                comp[g] = Counter({("real", None): int(n_real), ("synthetic", None): int(n_syn)})
                notes.append(f"{run.label}/{lin.name} {gen_name(g)}: composition from its metrics row "
                             "(train.extxyz unavailable); synthetic origin unknown")
        if comp:
            panels.append((run, lin, comp))
            max_gen = max(max_gen, max(comp), *(k[1] for c in comp.values() for k in c if k[1] is not None))
    if not panels:
        return None, notes
    cmap = matplotlib.colormaps["plasma"]
    syn_colour = lambda k: cmap(0.1 + 0.75 * (k / max(max_gen, 1)))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = new_figure(4.5 * ncols + 0.4, 3.5 * nrows + 1.2)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    legend: dict[str, Patch] = {}
    for ax, (run, lin, comp) in zip(axes.flat, panels):
        gens = sorted(comp)
        bottom = np.zeros(len(gens))
        cats = sorted({k for c in comp.values() for k in c},
                      key=lambda k: (k[0] != "real", k[0], -1 if k[1] is None else k[1]))
        for cat in cats:
            heights = np.array([comp[g].get(cat, 0) for g in gens], dtype=float)
            origin, og = cat
            if origin == "real":
                colour, label, hatch = REAL_COLOUR, "real (oracle-labelled)", None
            elif origin == "synthetic" and og is not None:
                colour, label, hatch = syn_colour(og), f"synthetic, sampled by model g{og}", None
            else:
                colour, label, hatch = "#cccccc", f"{origin} (origin generation unknown)", "//"
            ax.bar(gens, heights, bottom=bottom, color=colour, hatch=hatch, edgecolor="white", lw=0.5, width=0.8)
            bottom += heights
            legend.setdefault(label, Patch(facecolor=colour, hatch=hatch, label=label))
        name = f"{run.label} · {lin.name}" if style.multi_run else lin.name
        ax.set_title(name, color=style.colour(lin.policy), fontweight="bold")
        ax.set_ylabel("training structures [count]")
        _int_xaxis(ax)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_axis_off()
    order = sorted(legend, key=lambda s: (not s.startswith("real"), len(s), s))
    _legend(fig, [legend[k] for k in order], ncols=min(len(order), 5))
    caption = ("Composition of each generation's training set, read from the provenance of train.extxyz "
               "(atoms.info origin and generation): real oracle-labelled data versus synthetic data by the generation "
               "of the model that sampled and labelled it. Title colour = policy.")
    return Plot("fig-provenance", "Training-set provenance", caption, to_data_uri(fig),
                "Stacked bars of training-set composition per generation"), notes


# --- distribution drift --------------------------------------------------------------------
MAX_DRIFT_GENERATIONS = 6
MAX_DRIFT_SEEDS = 8


def _span_bins(values: np.ndarray, n: int = 50) -> np.ndarray:
    lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    return np.linspace(lo - 0.02 * (hi - lo + 1e-9), hi + 0.02 * (hi - lo + 1e-9), n)


def _bond_deviations(summaries: list, medians: dict[str, float]) -> np.ndarray:
    """Bond lengths minus the real data's median for their element pair (Å), pooled over pairs:
    one histogram that shows every pair's drift (pairs the real data lacks are left out)."""
    parts = [lengths - medians[pair] for s in summaries for pair, lengths in s.bond_lengths.items() if pair in medians]
    return np.concatenate(parts) if parts else np.zeros(0)


def _drift_lineages(style: Style) -> tuple[dict, list[str]]:
    """Per run, the lineages whose pools the drift histograms pool: at most ``MAX_DRIFT_SEEDS``
    of each policy (the first seeds), since a density over a few seeds' thousands of atoms
    already shows the drift; with a note when some are left out."""
    chosen, notes = {}, []
    for run in style.runs:
        by_policy: dict[str, list] = {}
        for lin in sorted(run.lineages.values(), key=lambda l: (l.seed is None, l.seed or 0, l.name)):
            by_policy.setdefault(lin.policy, []).append(lin)
        chosen[run.label] = [lin for lins in by_policy.values() for lin in lins[:MAX_DRIFT_SEEDS]]
        if any(len(lins) > MAX_DRIFT_SEEDS for lins in by_policy.values()):
            notes.append(f"{run.label}: drift histograms pool the first {MAX_DRIFT_SEEDS} lineages of each policy "
                         f"({len(chosen[run.label])} of {len(run.lineages)}).")
    return chosen, notes


def _drift_generations(style: Style) -> tuple[list[int], list[str]]:
    """The model-fed generations drawn: all, or ``MAX_DRIFT_GENERATIONS`` spread over them."""
    gens = sorted({g for run in style.runs for lin in run.lineages.values() for g in lin.generations if g})
    if len(gens) <= MAX_DRIFT_GENERATIONS:
        return gens, []
    keep = sorted({gens[int(round(i))] for i in np.linspace(0, len(gens) - 1, MAX_DRIFT_GENERATIONS)})
    return keep, [f"Drift histograms show generations {', '.join(map(str, keep))} of {gens[0]}–{gens[-1]}."]


def drift(style: Style, reader: SetReader) -> tuple[Plot | None, list[str]]:
    """Histograms of per-atom force magnitudes and nearest-neighbour distances (and, for
    molecules, bond-length deviations) of each generation's sampled pool (pooled over seeds)
    against the real generation-0 data. Only the files drawn are read."""
    lineages, notes = _drift_lineages(style)
    gens, gen_notes = _drift_generations(style)
    notes += gen_notes
    real: dict[str, dict[str, list]] = {}
    sampled: dict[int, dict[tuple[str, str], dict[str, list]]] = {}
    for run in style.runs:
        seeds_done = set()
        for lin in lineages[run.label]:
            ctx = f"{run.label}/{lin.name}"
            if 0 in lin.generations and lin.seed not in seeds_done:
                s = reader.get(lin.files(0).train, f"{ctx}/{gen_name(0)}")
                if s is not None and s.n_structures:
                    seeds_done.add(lin.seed)
                    real.setdefault(run.label, {"f": [], "nn": [], "sets": []})
                    real[run.label]["f"].append(s.force_magnitudes)
                    real[run.label]["nn"].append(s.nn_distances)
                    real[run.label]["sets"].append(s)
            for g in gens:
                if g not in lin.generations:
                    continue
                s = reader.get(lin.files(g).sampled, f"{ctx}/{gen_name(g)}")
                if s is None or not s.n_structures:
                    continue
                d = sampled.setdefault(g, {}).setdefault((run.label, lin.policy), {"f": [], "nn": [], "sets": []})
                d["f"].append(s.force_magnitudes)
                d["nn"].append(s.nn_distances)
                d["sets"].append(s)
    if not sampled and not real:
        return None, ["No readable train.extxyz / sampled.extxyz: distribution drift not drawn."]
    # molecules: bond lengths relative to the real data's median of their element pair
    pooled: dict[str, list] = {}
    for d in real.values():
        for s in d["sets"]:
            for pair, lengths in s.bond_lengths.items():
                pooled.setdefault(pair, []).append(lengths)
    medians = {pair: float(np.median(np.concatenate(parts))) for pair, parts in pooled.items()}
    for d in [*real.values(), *(d for by_policy in sampled.values() for d in by_policy.values())]:
        d["b"] = [_bond_deviations(d["sets"], medians)] if medians else []
    gens = sorted(sampled)
    if not gens:
        notes.append("No sampled pools (sampled.extxyz) to compare with the real data yet.")
    cat = lambda parts: np.concatenate(parts) if parts else np.zeros(0)
    all_f = [cat(d["f"]) for d in real.values()] + [cat(d["f"]) for g in gens for d in sampled[g].values()]
    all_nn = [cat(d["nn"]) for d in real.values()] + [cat(d["nn"]) for g in gens for d in sampled[g].values()]
    f_all, nn_all = cat(all_f), cat(all_nn)
    bins_f = np.linspace(0.0, float(f_all.max()) * 1.02 if f_all.size else 1.0, 50)
    panels = [("f", bins_f, "per-atom force magnitude |F| [eV/Å]", "density [1/(eV/Å)]", "force magnitudes"),
              ("nn", _span_bins(nn_all), "nearest-neighbour distance [Å]", "density [1/Å]",
               "nearest-neighbour distances")]
    if medians:
        b_all = cat([cat(d["b"]) for d in real.values()] + [cat(d["b"]) for g in gens for d in sampled[g].values()])
        panels.append(("b", _span_bins(np.clip(b_all, -0.5, 0.5)), "bond length − real median of its pair [Å]",
                       "density [1/Å]", "bond lengths (all element pairs)"))
    rows = gens or [None]
    fig = new_figure(6.2 * len(panels), 3.1 * len(rows) + 1.0)
    axes = fig.subplots(len(rows), len(panels), squeeze=False)
    handles = {}
    for r, g in enumerate(rows):
        for c, (key, bins, xlabel, ylabel, what) in enumerate(panels):
            ax = axes[r, c]
            for run_label, d in real.items():
                values = cat(d[key])
                if values.size:
                    ax.hist(values, bins=bins, density=True, histtype="stepfilled", color=REAL_COLOUR, alpha=0.3,
                            linestyle=style.linestyle(run_label), edgecolor=REAL_COLOUR, lw=1.2)
                    label = f"{run_label} · real data (generation 0)" if style.multi_run else "real data (generation 0)"
                    handles.setdefault(("real", run_label), Patch(facecolor=REAL_COLOUR, alpha=0.35, label=label))
            for (run_label, policy), d in sorted((sampled.get(g) or {}).items()):
                values = cat(d[key])
                if values.size:
                    ax.hist(values, bins=bins, density=True, histtype="step", color=style.colour(policy),
                            linestyle=style.linestyle(run_label), lw=1.8)
                    handles.setdefault((run_label, policy), style.handle(run_label, policy))
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.set_title(f"{what} — pool sampled for generation {g}" if g is not None else what)
    _legend(fig, list(handles.values()))
    caption = ("Per-atom force magnitudes and nearest-neighbour distances of the synthetic pool sampled for each "
               "generation (sampled.extxyz of a policy's lineages, pooled over seeds) against the real "
               "generation-0 training data (grey). Log density axis, so a lost tail shows as a curve ending early."
               + (" For molecules, every covalent bond's length minus the real data's median for its element pair "
                  "(C-H, C-C, ...; the axis spans at most ±0.5 Å): a bond-length distribution that drifts or "
                  "broadens away from the real one means the model samples chemistry the oracle does not."
                  if medians else ""))
    return Plot("fig-drift", "Distribution drift", caption, to_data_uri(fig),
                "Histograms of force magnitudes and nearest neighbour distances per generation"), notes
