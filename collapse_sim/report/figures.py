"""Every figure of the report, drawn with matplotlib's object API on the Agg canvas (no pyplot,
no global backend switch) and returned as a base64 PNG data URI.

Shared conventions: one colour per policy name (``style.policy_colours``), one line
style and marker per run directory, labelled axes with units, a legend on every figure.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from collapse_sim.measure.catalogue import DATA_SETS, PROBE_SETS, TARGETS, describe
from collapse_sim.report import analysis, png_workers
from collapse_sim.report.rundata import RunData, finite
from collapse_sim.report.style import FIGURES, RUN_LINESTYLES, RUN_MARKERS, panel_col_order

RC = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "legend.fontsize": 10,
    "xtick.labelsize": 10, "ytick.labelsize": 10, "figure.titlesize": 13,
    "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
}
DPI = 100  # figures are at most ~14 in wide: about the page width, so fonts are not scaled down
COL_TITLES = {"ID": PROBE_SETS.values["id"], "OOD": PROBE_SETS.values["ood"],
              "HELD-OUT": PROBE_SETS.values["held_out"], **DATA_SETS.values, "all": ""}


@dataclass
class Plot:
    """A rendered figure for the page."""

    id: str
    title: str
    caption: str
    uri: str
    alt: str
    notes: list[str] = field(default_factory=list)


@dataclass
class Style:
    runs: list[RunData]
    colours: dict[str, str]

    @property
    def multi_run(self) -> bool:
        return len(self.runs) > 1

    def run_index(self, label: str) -> int:
        return next((i for i, r in enumerate(self.runs) if r.label == label), 0)

    def linestyle(self, run_label: str) -> str:
        return RUN_LINESTYLES[self.run_index(run_label) % len(RUN_LINESTYLES)]

    def marker(self, run_label: str) -> str:
        return RUN_MARKERS[self.run_index(run_label) % len(RUN_MARKERS)]

    def colour(self, policy: str) -> str:
        return self.colours.get(policy, "#333333")

    def label(self, run_label: str, policy: str) -> str:
        return f"{run_label} · {policy}" if self.multi_run else policy

    def handle(self, run_label: str, policy: str) -> Line2D:
        return Line2D([], [], color=self.colour(policy), linestyle=self.linestyle(run_label),
                      marker=self.marker(run_label), lw=2, label=self.label(run_label, policy))


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def to_data_uri(fig: Figure) -> str | png_workers.Pending:
    """The page's image of ``fig``: rendered by a worker inside ``png_workers.parallel()`` (resolve
    it with ``png_workers.resolved``), else a data URI made here."""
    return png_workers.submit(fig, DPI, RC)


def _legend(fig: Figure, handles: list, extra: list | None = None, ncols: int | None = None) -> None:
    handles = list(handles) + list(extra or [])
    if handles:
        fig.legend(handles=handles, loc="outside upper center", ncols=ncols or min(len(handles), 4), frameon=False)


def _int_xaxis(ax, label: str = "generation") -> None:
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(label)


def _blank(ax, text: str) -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777777")


# --- collapse curves -----------------------------------------------------------------------
def collapse_curves(figure_key: str, columns: list[str], style: Style, present: dict[str, list[str]]) -> Plot:
    """One panel per metric (rows: quantity; columns: probe / data set), one line per run × policy."""
    metrics = [describe(c) for c in columns]
    rows = list(dict.fromkeys(m.row for m in metrics))
    row_labels = {m.row: m.label for m in metrics}
    cols = sorted(dict.fromkeys(m.col for m in metrics), key=panel_col_order)
    wrap = cols == ["all"]
    if wrap:  # independent quantities: a plain grid
        ncols = min(3, len(rows))
        nrows = -(-len(rows) // ncols)
        cells = {(m.row, m.col): divmod(i, ncols) for i, m in enumerate(metrics)}
    else:
        ncols, nrows = len(cols), len(rows)
        cells = {(m.row, m.col): (rows.index(m.row), cols.index(m.col)) for m in metrics}
    fig = new_figure(5.6 * ncols + 0.4, 3.5 * nrows + 0.9)
    axes = np.atleast_2d(fig.subplots(nrows, ncols, squeeze=False))
    used, handles, notes = set(), {}, []
    by_col = {m.column: m for m in metrics}
    for column, m in by_col.items():
        r, c = cells[(m.row, m.col)]
        ax = axes[r, c]
        used.add((r, c))
        drew_ref = False
        for run in style.runs:
            for s in analysis.series(run, column):
                colour, ls, mk = style.colour(s.policy), style.linestyle(run.label), style.marker(run.label)
                ax.plot(s.generations, s.mean, color=colour, linestyle=ls, marker=mk, lw=2, ms=5)
                ok = np.isfinite(s.sem)
                if ok.any():
                    ax.fill_between(s.generations[ok], (s.mean - s.sem)[ok], (s.mean + s.sem)[ok], color=colour,
                                    alpha=0.18, lw=0)
                handles.setdefault((run.label, s.policy), style.handle(run.label, s.policy))
            ref = finite((run.reference or {}).get(column))
            if ref is not None:
                ax.axhline(ref, color="black", linestyle=style.linestyle(run.label), lw=1, alpha=0.6)
                drew_ref = True
        title = m.label if wrap else f"{m.label} — {COL_TITLES.get(m.col, m.col)}"
        ax.set_title(title)
        ax.set_ylabel(m.axis_label)
        _int_xaxis(ax)
        if drew_ref:
            handles.setdefault(("", "reference"), Line2D([], [], color="black", lw=1, alpha=0.6,
                                                         label="reference model (real data only)"))
        if style.multi_run and len(present.get(column, [])) < len(style.runs):
            notes.append(f"{m.short}: recorded only by {', '.join(present.get(column, []))}.")
    gens = [g for run in style.runs for row in run.rows for g in [row["generation"]]]
    if gens:  # one generation axis for every panel, so ID/OOD and train/sampled line up
        for r, c in used:
            axes[r, c].set_xlim(min(gens) - 0.25, max(gens) + 0.25)
    for r in range(nrows):
        for c in range(ncols):
            if (r, c) not in used:
                if wrap:
                    axes[r, c].set_axis_off()
                else:
                    _blank(axes[r, c], f"{row_labels[rows[r]]}\nnot recorded for {COL_TITLES.get(cols[c], cols[c])}")
    _legend(fig, list(handles.values()))
    spec = FIGURES[figure_key]
    caption = spec.caption + (" Lines: mean over seeds; bands: ± standard error over seeds (drawn where at least two "
                               "seeds have a value).")
    alt = f"{spec.title}: {', '.join(by_col)} versus generation"
    return Plot(f"fig-{figure_key}", spec.title, caption, to_data_uri(fig), alt, notes)


# --- accuracy against oracle cost ---------------------------------------------------------
def accuracy_vs_oracle_calls(style: Style) -> Plot | None:
    """Force RMSE on each probe set (ID, OOD, held-out if any) against the lineage's cumulative oracle calls: one
    line per run × policy (means over seeds), one point per generation. None if no run records
    both."""
    columns = [f"rmse_forces_{p}" for p in PROBE_SETS.values]
    cost = {run.label: analysis.values_by_seed(run, analysis.ORACLE_COST) for run in style.runs}
    panels = [c for c in columns if any(set(analysis.values_by_seed(run, c)) & set(cost[run.label])
                                        for run in style.runs)]
    if not panels:
        return None
    fig = new_figure(6.0 * len(panels) + 0.4, 4.4)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    handles = {}
    for ax, column in zip(axes, panels):
        m = describe(column)
        for run in style.runs:
            errors = analysis.values_by_seed(run, column)
            for policy in sorted(set(errors) & set(cost[run.label])):
                by_gen_x, by_gen_y = cost[run.label][policy], errors[policy]
                gens = sorted(set(by_gen_x) & set(by_gen_y))
                if not gens:
                    continue
                x = [float(np.mean(list(by_gen_x[g].values()))) for g in gens]
                y = [float(np.mean(list(by_gen_y[g].values()))) for g in gens]
                colour = style.colour(policy)
                ax.plot(x, y, color=colour, linestyle=style.linestyle(run.label), marker=style.marker(run.label),
                        lw=2, ms=5)
                ax.annotate(f"g{gens[-1]}", (x[-1], y[-1]), xytext=(4, 4), textcoords="offset points", fontsize=9,
                            color=colour)
                handles.setdefault((run.label, policy), style.handle(run.label, policy))
            for p in analysis.cost_points(run, column):  # the last generation: 95 % intervals, the front ringed
                if p.calls.n > 1:
                    spread = [[[s.mean - s.low], [s.high - s.mean]] for s in (p.calls, p.error)]
                    ax.errorbar(p.calls.mean, p.error.mean, xerr=spread[0], yerr=spread[1], fmt="none",
                                ecolor=style.colour(p.policy), elinewidth=1, capsize=3, zorder=4)
                if p.front:
                    ax.plot(p.calls.mean, p.error.mean, "o", ms=13, mfc="none", mec="black", mew=1.2, zorder=5)
        ax.set_title(f"{m.label} — {COL_TITLES.get(m.col, m.col)}")
        ax.set_ylabel(m.axis_label)
        ax.set_xlabel("cumulative oracle calls [–]")
    _legend(fig, list(handles.values()))
    caption = ("Force RMSE on the fixed probe sets against the lineage's cumulative oracle calls "
               "(`oracle_calls_total`: generation 0's real data included, probes and reference model not); each "
               "point a generation (gN marks the last), means over seeds; at the last generation, bars give the 95 % "
               "t intervals over seeds and black rings mark the Pareto front (no policy both cheaper and more "
               "accurate, by the means). Lower and further left is better: the accuracy a policy buys per oracle "
               "call.")
    return Plot("fig-oracle-cost", "Accuracy against oracle calls", caption, to_data_uri(fig),
                "Force RMSE on ID and OOD probes versus cumulative oracle calls")


# --- information imbalance plane ----------------------------------------------------------
def information_plane(target: str, style: Style) -> Plot | None:
    probes = [p for p in ("id", "ood") if any(
        finite(r.get(f"ii_{target}_to_model_{p}")) is not None
        and finite(r.get(f"ii_model_to_{target}_{p}")) is not None
        for run in style.runs for r in run.rows)]
    if not probes:
        return None
    fig = new_figure(6.4 * len(probes) + 0.4, 6.2)
    axes = fig.subplots(1, len(probes), squeeze=False)[0]
    handles, top = {}, 1.0
    id_max = max((v for run in style.runs for r in run.rows for p in probes
                   if (v := finite(r.get(f"id_twonn_model_{p}"))) is not None), default=None)
    for ax, p in zip(axes, probes):
        for run in style.runs:
            for lin in sorted(run.lineages.values(), key=lambda l: l.name):
                pts = []
                for r in sorted((r for r in run.rows if r["lineage"] == lin.name), key=lambda r: r["generation"]):
                    x, y = finite(r.get(f"ii_{target}_to_model_{p}")), finite(r.get(f"ii_model_to_{target}_{p}"))
                    if x is not None and y is not None:
                        pts.append((r["generation"], x, y, finite(r.get(f"id_twonn_model_{p}"))))
                if not pts:
                    continue
                colour = style.colour(lin.policy)
                g, x, y, dim = (np.array([q[i] if q[i] is not None else np.nan for q in pts], dtype=float)
                                for i in range(4))
                top = max(top, float(np.nanmax(np.r_[x, y])))
                sizes = 25 + 175 * (dim / id_max) if id_max else np.full(len(x), 50.0)
                sizes = np.where(np.isfinite(sizes), sizes, 50.0)
                ax.scatter(x, y, s=sizes, color=colour, marker=style.marker(run.label), alpha=0.75,
                           edgecolors="white", linewidths=0.5, zorder=3)
                for i in range(len(x) - 1):
                    ax.annotate("", xy=(x[i + 1], y[i + 1]), xytext=(x[i], y[i]), zorder=2,
                                arrowprops=dict(arrowstyle="-|>", color=colour, lw=1.6,
                                                linestyle=style.linestyle(run.label),
                                                shrinkA=4, shrinkB=4, mutation_scale=14))
                ax.annotate(f"g{int(g[-1])}", (x[-1], y[-1]), xytext=(4, 4), textcoords="offset points", fontsize=9,
                            color=colour)
                handles.setdefault((run.label, lin.policy), style.handle(run.label, lin.policy))
        ax.set_title(f"vs {TARGETS.values.get(target, target)} — {PROBE_SETS.values[p]}")
        ax.set_xlabel(f"Δ({target} → model) [–]")
        ax.set_ylabel(f"Δ(model → {target}) [–]")
    lim = 1.05 * top
    for ax in axes:
        ax.plot([0, lim], [0, lim], color="#999999", lw=1, linestyle="--", zorder=1)
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_aspect("equal")
    extra = [Line2D([], [], color="#999999", lw=1, linestyle="--", label="symmetric (equal information)")]
    if id_max:
        extra.append(Line2D([], [], color="#777777", marker="o", lw=0, ms=9,
                            label="marker area ∝ embedding intrinsic dim."))
    _legend(fig, list(handles.values()), extra)
    caption = (f"Information imbalance between each generation's embeddings and the "
               f"{TARGETS.values.get(target, target)}'s on the same probes. Δ(A→B) ≈ 0: A's neighbourhoods "
               "predict B's (A carries B's information); ≈ 1: A says nothing about B. Arrows follow each lineage "
               "from generation to generation (gN marks the last). "
               "Near the origin the two representations carry the same information; above the diagonal the "
               "model has lost information the target still has.")
    return Plot(f"fig-ii-{target}", f"Information-imbalance plane: {TARGETS.values.get(target, target)}", caption,
                to_data_uri(fig), f"Information imbalance plane versus {target}")


# --- heatmaps ------------------------------------------------------------------------------
def heatmaps(result, style: Style) -> Plot | None:
    maps = result.heatmaps
    if not maps:
        return None
    ncols = min(3, len(maps))
    nrows = -(-len(maps) // ncols)
    fig = new_figure(4.2 * ncols + 1.4, 4.0 * nrows + 0.9)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    finite_vals = np.concatenate([h.matrix[np.isfinite(h.matrix)] for h in maps])
    # colour range: from a round number below the smallest value (so small differences show) to 1;
    # cells carry their numbers when the matrix is small
    low = float(finite_vals.min()) if finite_vals.size else 0.0
    vmin = min(np.floor(low * 10) / 10, 0.8) if low >= 0 else float(np.floor(low * 10) / 10)
    vmax = 1.0  # CKNNA of a representation with itself; larger values saturate (the colour bar says so)
    above = bool(finite_vals.size and finite_vals.max() > vmax + 1e-9)
    image = None
    for ax, h in zip(axes.flat, maps):
        image = ax.imshow(h.matrix, vmin=vmin, vmax=vmax, cmap="viridis", origin="upper")
        ticks = range(len(h.generations))
        ax.set_xticks(list(ticks), [str(g) for g in h.generations])
        ax.set_yticks(list(ticks), [str(g) for g in h.generations])
        ax.grid(False)
        ax.set_xlabel("generation")
        ax.set_ylabel("generation")
        name = f"{h.run.label} · {h.lineage.name}" if style.multi_run else h.lineage.name
        ax.set_title(name, color=style.colour(h.lineage.policy), fontweight="bold")
        if len(h.generations) <= 8:
            for i in ticks:
                for j in ticks:
                    v = h.matrix[i, j]
                    if np.isfinite(v):
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=9,
                                color="white" if v < vmin + 0.6 * (vmax - vmin) else "black")
    for ax in list(axes.flat)[len(maps):]:
        ax.set_axis_off()
    ks = sorted({h.k for h in maps})
    bar = fig.colorbar(image, ax=axes, shrink=0.8, extend="max" if above else "neither")
    bar.set_label(f"CKNNA (k={', '.join(map(str, ks))}) [–]")
    policies = list(dict.fromkeys((h.run.label, h.lineage.policy) for h in maps))
    _legend(fig, [Patch(color=style.colour(p), label=f"title colour: {style.label(r, p)}") for r, p in policies],
            ncols=min(len(policies), 3))
    caption = ("CKNNA between the ID-probe embeddings of every pair of generations of a lineage, computed for this "
               "report from the embeddings each generation saved (1 on the diagonal; a dark block = generations "
               "whose representations no longer align). Title colour = policy.")
    return Plot("fig-heatmaps", "Generation × generation alignment (CKNNA)", caption, to_data_uri(fig),
                "Generation by generation CKNNA heatmaps", list(result.notes))


# --- provenance ----------------------------------------------------------------------------
def rc_context():
    return matplotlib.rc_context(RC)
