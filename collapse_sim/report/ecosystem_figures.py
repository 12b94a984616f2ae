"""Figures of an ecosystem of labs: lab × lab alignment heatmaps, the monoculture index over
generations, the information-imbalance plane and the evolutionary tree (arXiv 2512.03750).

Same conventions as ``figures`` (object API on the Agg canvas, ``RC`` style, legend on top);
each function takes plain arrays and dicts, returns a ``Figure`` (``figures.to_data_uri`` makes
the page's image of it, ``write_png`` a file), and ``ECOSYSTEM_FIGURES`` holds titles and captions.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from collapse_sim.metrics.tree import newick_name, parse_newick
from collapse_sim.report.figures import COL_TITLES, DPI, _int_xaxis, _legend, new_figure, rc_context
from collapse_sim.report.statistics import summarise
from collapse_sim.report.style import RUN_MARKERS, FigureSpec, policy_colours

#: figure key -> title and caption, in page order
ECOSYSTEM_FIGURES: dict[str, FigureSpec] = {
    "eco_alignment": FigureSpec(
        "Lab × lab alignment",
        "CKNNA between the probe embeddings of every pair of labs' models, one panel per generation (1 on the "
        "diagonal). A matrix turning uniformly bright: the labs converge on one representation."),
    "eco_monoculture": FigureSpec(
        "Monoculture index",
        "Mean off-diagonal lab × lab CKNNA per generation. 1: every lab represents the probes the same way (a "
        "monoculture); near 0: independent representations. Lines: mean over seeds; bands: ± standard error "
        "(where at least two seeds have a value)."),
    "eco_ii_plane": FigureSpec(
        "Information-imbalance plane of the labs",
        "Every pair of models at (Δ(A→B), Δ(B→A)), coloured by their CKNNA. Near (0, 0): the two carry the same "
        "information; near (1, 1): unrelated; off the diagonal: one model holds information the other lacks "
        "(below the diagonal A predicts B better than B predicts A)."),
    "eco_tree": FigureSpec(
        "Evolutionary tree of the models",
        "Neighbor-Joining tree (midpoint-rooted) of Jensen–Shannon distances between the models' CKNNA profiles. "
        "Models on one short branch represent the probes alike. Label colour: architecture; marker: data source. "
        "Clades that follow the colours: architecture governs the representation; clades that follow the "
        "markers: data does."),
}

_GROUP_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def write_png(fig: Figure, path) -> Path:
    """Save ``fig`` as a PNG at the report's resolution; returns the path."""
    path = Path(path)
    fig.savefig(path, format="png", dpi=DPI)
    return path


def _title(key) -> str:
    return f"generation {key}" if isinstance(key, (int, np.integer)) else str(key)


# --- heatmaps --------------------------------------------------------------------------------
def alignment_heatmaps(matrices: Mapping[object, np.ndarray], names: Sequence[str], *, measure: str = "CKNNA",
                       k: int | None = None) -> Figure:
    """One heatmap per key of ``matrices`` (a generation number, or any label), rows and columns =
    ``names``; values written in the cells when there are at most 10 labs. Shared colour scale,
    labelled with ``k`` (the neighbour count of the matrices) when given."""
    if not matrices:
        raise ValueError("alignment_heatmaps: no matrices")
    m = len(names)
    ncols = min(3, len(matrices))
    nrows = -(-len(matrices) // ncols)
    side = max(3.6, 0.55 * m + 1.8)
    with rc_context():
        fig = new_figure(side * ncols + 1.2, side * nrows + 0.6)
        axes = fig.subplots(nrows, ncols, squeeze=False)
        values = np.concatenate([np.asarray(a, dtype=float).ravel() for a in matrices.values()])
        values = values[np.isfinite(values)]
        vmin = min(0.0, float(np.floor(values.min() * 10) / 10)) if values.size else 0.0
        image = None
        for ax, (key, matrix) in zip(axes.flat, matrices.items()):
            A = np.asarray(matrix, dtype=float)
            image = ax.imshow(A, vmin=vmin, vmax=1.0, cmap="viridis", origin="upper")
            ax.set_xticks(range(m), names, rotation=45, ha="right", rotation_mode="anchor")
            ax.set_yticks(range(m), names)
            ax.grid(False)
            ax.set_title(_title(key))
            if m <= 10:
                for i in range(m):
                    for j in range(m):
                        if np.isfinite(A[i, j]):
                            ax.text(j, i, f"{A[i, j]:.2f}", ha="center", va="center", fontsize=9,
                                    color="white" if A[i, j] < vmin + 0.6 * (1.0 - vmin) else "black")
        for ax in list(axes.flat)[len(matrices):]:
            ax.set_axis_off()
        bar = fig.colorbar(image, ax=axes, shrink=0.8)
        bar.set_label(f"{measure}{f' (k={k})' if k else ''} [–]")
    return fig


# --- monoculture index -----------------------------------------------------------------------
def monoculture_curves(values: Mapping[str, Mapping[int, Sequence[float]]]) -> Figure:
    """Monoculture index against generation, one line per condition (e.g. "commons on" / "commons off"):
    ``values[condition][generation]`` = the index of each seed. Line = mean, band = ± standard
    error over seeds (``statistics.summarise``)."""
    colours = policy_colours(values)
    with rc_context():
        fig = new_figure(6.4, 4.4)
        ax = fig.subplots()
        handles = []
        for i, (condition, by_gen) in enumerate(values.items()):
            gens = np.array(sorted(by_gen), dtype=float)
            stats = [summarise(by_gen[g]) for g in sorted(by_gen)]
            mean = np.array([s.mean for s in stats])
            sem = np.array([s.sem for s in stats])
            colour, marker = colours[condition], RUN_MARKERS[i % len(RUN_MARKERS)]
            ax.plot(gens, mean, color=colour, marker=marker, lw=2, ms=5)
            ok = np.isfinite(sem)
            if ok.any():
                ax.fill_between(gens[ok], (mean - sem)[ok], (mean + sem)[ok], color=colour, alpha=0.18, lw=0)
            seeds = max((s.n for s in stats), default=0)
            handles.append(Line2D([], [], color=colour, marker=marker, lw=2,
                                  label=f"{condition} ({seeds} seed{'s' if seeds != 1 else ''})"))
        ax.set_ylabel("monoculture index (mean off-diagonal CKNNA) [–]")
        _int_xaxis(ax)
        _legend(fig, handles)
    return fig


# --- information-imbalance plane -------------------------------------------------------------
def information_imbalance_plane(panels: Mapping[str, tuple[np.ndarray, np.ndarray]],
                                names: Sequence[str] | None = None, *, k: int | None = None) -> Figure:
    """One panel per probe set (e.g. {"ID": (D, C), "OOD": (D, C)}): D from
    ``information_imbalance_pairs``, C from ``alignment_matrix``. Each pair i < j is drawn at
    (D[i, j], D[j, i]) and coloured by C[i, j]; pairs are labelled "A | B" when names are given and
    there are at most 15 pairs. The colour bar names ``k`` (CKNNA's neighbour count) when given."""
    if not panels:
        raise ValueError("information_imbalance_plane: no panels")
    with rc_context():
        fig = new_figure(5.6 * len(panels) + 1.2, 5.6)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        points = {}
        for key, (D, C) in panels.items():
            D, C = np.asarray(D, dtype=float), np.asarray(C, dtype=float)
            i, j = np.triu_indices(len(D), k=1)
            points[key] = (i, j, D[i, j], D[j, i], C[i, j])
        colours = np.concatenate([p[4] for p in points.values()])
        colours = colours[np.isfinite(colours)]
        norm = Normalize(vmin=min(0.0, float(colours.min())) if colours.size else 0.0, vmax=1.0)
        top = max([1.05] + [1.02 * float(np.nanmax(np.r_[p[2], p[3]])) for p in points.values() if len(p[2])])
        image = None
        for ax, (key, (i, j, x, y, c)) in zip(axes, points.items()):
            ax.plot([0, top], [0, top], color="#999999", lw=1, linestyle="--", zorder=1)
            image = ax.scatter(x, y, c=c, cmap="viridis", norm=norm, s=60, edgecolors="black", linewidths=0.5,
                               zorder=3)
            if names is not None and len(i) <= 15:
                for a, b, px, py in zip(i, j, x, y):
                    ax.annotate(f"{names[a]} | {names[b]}", (px, py), xytext=(4, 4), textcoords="offset points",
                                fontsize=8, color="#333333")
            ax.set_xlim(0, top)
            ax.set_ylim(0, top)
            ax.set_aspect("equal")
            ax.set_title(COL_TITLES.get(key, key) or str(key))
            ax.set_xlabel("Δ(A → B) [–]")
            ax.set_ylabel("Δ(B → A) [–]")
        bar = fig.colorbar(image, ax=list(axes), shrink=0.8)
        bar.set_label(f"CKNNA{f' (k={k})' if k else ''} [–]")
        _legend(fig, [Line2D([], [], color="#999999", lw=1, linestyle="--", label="symmetric (equal information)")])
    return fig


# --- tree ------------------------------------------------------------------------------------
def tree_figure(newick: str, architecture: Mapping[str, str], data_source: Mapping[str, str] | None = None) -> Figure:
    """The Newick tree drawn by ``Bio.Phylo.draw``: leaf labels coloured by ``architecture[name]``,
    a marker at each leaf by ``data_source[name]``. Keys are the names given to
    ``neighbor_joining`` (matched through ``newick_name``)."""
    from Bio import Phylo  # draw() imports pyplot; it only draws onto the axes given here

    tree = parse_newick(newick)
    arch = {newick_name(n): a for n, a in architecture.items()}
    data = {newick_name(n): d for n, d in (data_source or {}).items()}
    arch_colour = {a: _GROUP_COLOURS[i % len(_GROUP_COLOURS)] for i, a in enumerate(dict.fromkeys(arch.values()))}
    data_marker = {d: RUN_MARKERS[i % len(RUN_MARKERS)] for i, d in enumerate(dict.fromkeys(data.values()))}
    leaves = tree.count_terminals()
    with rc_context():
        fig = new_figure(7.5, max(3.5, 0.42 * leaves + 1.6))
        ax = fig.subplots()
        Phylo.draw(tree, axes=ax, do_show=False,
                   label_func=lambda clade: f" {clade.name}" if clade.is_terminal() else None,
                   label_colors=lambda label: arch_colour.get(arch.get(label.strip()), "black"))
        for text in ax.texts:
            name = text.get_text().strip()
            text.set_fontweight("bold")
            if name in data:
                x, y = text.get_position()
                ax.plot([x], [y], marker=data_marker[data[name]], color="#444444", ms=8, lw=0, zorder=4,
                        markeredgecolor="white")
        ax.set_yticks([])
        ax.set_ylabel("")
        ax.grid(False)
        ax.set_xlabel("branch length (JSD distance) [–]")
        handles = [Patch(color=c, label=f"architecture: {a}") for a, c in arch_colour.items()]
        handles += [Line2D([], [], marker=mk, color="#444444", lw=0, ms=8, label=f"data: {d}")
                    for d, mk in data_marker.items()]
        _legend(fig, handles, ncols=min(len(handles), 3) or None)
    return fig
