"""The report's figure sections, one small builder each: a builder takes the loaded report data
and returns its section (figures and notes), or None when it has nothing to show. ``SECTIONS``
lists them in page order. A figure that fails to draw is a warning and a note of its section,
never the end of the report (``ReportData.guarded``)."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from collapse_sim.measure.catalogue import METRICS, describe
from collapse_sim.report import analysis, data_figures, figures
from collapse_sim.report.datasets import SetReader
from collapse_sim.report.rundata import RunData
from collapse_sim.report.style import FIGURES

_log = logging.getLogger(__name__)


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    plots: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """What every section builder reads: the runs and how to draw them, the report's options,
    and where warnings and timings are collected."""

    runs: list[RunData]
    style: figures.Style
    reader: SetReader
    warnings: list[str]
    timings: dict[str, float]
    cknna_k: int | None  # None: each run's recorded metrics.k
    max_heatmap_lineages: int
    heatmaps: bool

    def guarded(self, name: str, fn: Callable, section: Section):
        """``fn()``, timed under ``name``; an exception becomes a warning and a note of ``section``
        (a damaged input must not end the report) and the result None."""
        t = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a damaged input must not end the report
            self.warnings.append(f"{name} could not be drawn ({type(exc).__name__}: {exc})")
            section.notes.append(f"{name}: not drawn because of an error ({type(exc).__name__}).")
            _log.debug("%s failed", name, exc_info=True)
            return None
        finally:
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t


def collapse_curves(data: ReportData) -> Section:
    """Each metric against generation, one figure per metric family."""
    present = analysis.numeric_columns(data.runs)
    section = Section("collapse-curves", "Collapse curves",
                      "Each metric against generation, one line per policy (and run). In-distribution and "
                      "out-of-distribution probes are separate panels.")
    for key in FIGURES:
        columns = [c for c in present if describe(c).figure == key]
        columns.sort(key=lambda c: list(METRICS).index(c) if c in METRICS else 10**6 + sorted(present).index(c))
        if columns:
            plot = data.guarded(f"collapse curves: {FIGURES[key].title}",
                                lambda k=key, cs=columns: figures.collapse_curves(k, cs, data.style, present), section)
            if plot:
                section.plots.append(plot)
    missing = [c for c, m in METRICS.items() if c not in present and m.figure != "ii"]
    if missing:
        section.notes.append(f"Not recorded by any run, so not drawn: {', '.join(missing)}.")
    non_numeric = [c for c in analysis.unknown_columns(data.runs) if c not in present]
    if non_numeric:
        section.notes.append(f"Non-numeric columns not drawn: {', '.join(non_numeric)}.")
    return section


def oracle_cost(data: ReportData) -> Section:
    section = Section("oracle-cost", "Accuracy against oracle calls",
                      "What each policy's oracle calls buy: force RMSE against the cumulative oracle calls of its "
                      "lineage.")
    plot = data.guarded("accuracy against oracle calls", lambda: figures.accuracy_vs_oracle_calls(data.style), section)
    if plot:
        section.plots.append(plot)
        for run in data.runs:
            for column in ("rmse_forces_id", "rmse_forces_ood"):
                front = [p for p in analysis.cost_points(run, column) if p.front]
                if front:
                    section.notes.append(f"{run.label}, {column} at the last generation — Pareto front: " + "; ".join(
                        f"{p.policy} ({p.calls.mean:.0f} oracle calls, {p.error.mean:.4g}"
                        + (f" ± {p.error.sem:.2g} s.e., {p.error.n} seeds)" if p.error.n > 1 else ")")
                        for p in sorted(front, key=lambda p: p.calls.mean)))
    elif not section.notes:
        section.notes.append("No run records both force RMSE and oracle_calls_total; the figure is not drawn.")
    return section


def information_imbalance(data: ReportData) -> Section:
    section = Section("information-imbalance", "Information-imbalance plane",
                      "Δ(target → model) against Δ(model → target) for each generation; arrows follow each lineage.")
    for target in ("ref", "gen0", "prev"):
        plot = data.guarded(f"information plane ({target})",
                            lambda t=target: figures.information_plane(t, data.style), section)
        if plot:
            section.plots.append(plot)
    if not section.plots:
        section.notes.append("No run records information imbalances (ii_* columns); the plane is not drawn.")
    return section


def alignment_heatmaps(data: ReportData) -> Section:
    """Generation × generation CKNNA of each lineage, from its saved probe embeddings."""
    section = Section("alignment-heatmaps", "Generation × generation alignment")
    if not data.heatmaps:
        section.notes.append("Heatmaps disabled (--no-heatmaps).")
        return section
    from collapse_sim.report.embeddings import alignment_heatmaps as compute

    result = data.guarded("alignment heatmaps", lambda: compute(
        data.runs, k=data.cknna_k, max_lineages=data.max_heatmap_lineages), section)
    if result is None:
        return section
    plot = data.guarded("alignment heatmap figure", lambda: figures.heatmaps(result, data.style), section)
    if plot:
        section.plots.append(plot)
        section.intro = (f"CKNNA between the saved in-distribution probe embeddings of "
                         f"{result.generations_read} generation(s), in {result.seconds:.1f} s.")
    else:
        section.notes.extend(result.notes)
    if not result.heatmaps and not result.notes:
        section.notes.append("No lineage has saved probe embeddings; no heatmap drawn.")
    return section


def ecosystem(data: ReportData) -> Section | None:
    """Runs with labs: how alike the labs' representations are; None when no run has labs."""
    from collapse_sim.report.ecosystem import section_content

    section = Section("ecosystem", "Ecosystem",
                      "Labs sharing a commons (arXiv 2512.03750's measures): how alike the labs' representations "
                      "are, with and without the commons, and whether they group by architecture or by data.")
    for run in data.runs:
        content = data.guarded(f"ecosystem of {run.label}", lambda r=run: section_content(r), section)
        if content:
            section.plots.extend(content[0])
            section.notes.extend(content[1])
    return section if section.plots or section.notes else None


def _structure_figure(data: ReportData, key: str, title: str, label: str, draw, empty_note: str | None) -> Section:
    """A section holding one figure drawn from the runs' structure files, plus its notes."""
    section = Section(key, title)
    drawn = data.guarded(label, draw, section)
    if drawn:
        plot, notes = drawn
        section.notes.extend(notes)
        if plot:
            section.plots.append(plot)
        elif empty_note:
            section.notes.append(empty_note)
    return section


def provenance(data: ReportData) -> Section:
    return _structure_figure(data, "provenance", "Data provenance", "provenance",
                             lambda: data_figures.provenance(data.style, data.reader),
                             "No readable training sets: provenance not drawn.")


def distribution_drift(data: ReportData) -> Section:
    return _structure_figure(data, "distribution-drift", "Distribution drift", "distribution drift",
                             lambda: data_figures.drift(data.style, data.reader), None)


#: the figure sections, in page order
SECTIONS: tuple[Callable[[ReportData], Section | None], ...] = (
    collapse_curves, oracle_cost, information_imbalance, alignment_heatmaps, ecosystem, provenance,
    distribution_drift)
