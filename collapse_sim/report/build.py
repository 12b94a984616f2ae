"""``build_report``: run directories in, report.html (self-contained) and report.md out."""
from __future__ import annotations

import base64
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from collapse_sim.measure.catalogue import METRICS, describe
from collapse_sim.report import analysis, data_figures, figures, rendering
from collapse_sim.report.compare import METHODS, compare
from collapse_sim.report.context import build_context
from collapse_sim.report.datasets import SetReader
from collapse_sim.report.rundata import NotARunDirectory, assign_labels, load_run
from collapse_sim.report.statistics import WILCOXON_TOO_FEW
from collapse_sim.report.style import FIGURES, policy_colours
from collapse_sim.runtime.atomic import atomic_write_bytes, atomic_write_text

_log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.2
DEFAULT_MAX_HEATMAP_LINEAGES = 16


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    plots: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    warnings: list[str]
    seconds: float
    timings: dict[str, float]


def build_report(run_dirs, out: Path, *, threshold: float = DEFAULT_THRESHOLD, cknna_k: int | None = None,
                 max_heatmap_lineages: int = DEFAULT_MAX_HEATMAP_LINEAGES, heatmaps: bool = True,
                 figures_dir: Path | None = None) -> ReportResult:
    """Write ``out`` (HTML) and ``out`` with suffix .md, and with ``figures_dir`` (a folder) every
    figure as ``<figure id>.png``. Raises ``NotARunDirectory`` for a path that is not a run
    directory; any damage inside a run directory becomes a warning."""
    start = time.perf_counter()
    timings: dict[str, float] = {}
    out = Path(out)
    paths = [Path(p) for p in run_dirs]
    if not paths:
        raise NotARunDirectory("no run directory given")
    seen = set()
    for p in paths:
        if p.resolve() in seen:
            raise NotARunDirectory(f"{p}: given twice")
        seen.add(p.resolve())
    runs = [load_run(p) for p in paths]
    assign_labels(runs)
    timings["read run directories"] = time.perf_counter() - start

    warnings: list[str] = [w for r in runs for w in r.warnings]
    general_notes: list[str] = [n for r in runs for n in r.notes]
    style = figures.Style(runs, policy_colours({lin.policy for r in runs for lin in r.lineages.values()}))
    reader = SetReader(lambda msg: warnings.append(msg))
    sections: list[Section] = []

    def guarded(name: str, fn, section: Section):
        t = time.perf_counter()
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - a damaged input must not end the report
            warnings.append(f"{name} could not be drawn ({type(exc).__name__}: {exc})")
            section.notes.append(f"{name}: not drawn because of an error ({type(exc).__name__}).")
            _log.debug("%s failed", name, exc_info=True)
            return None
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t

    with figures.rc_context(), rendering.parallel():
        # collapse curves
        present = analysis.numeric_columns(runs)
        curves = Section("collapse-curves", "Collapse curves",
                         "Each metric against generation, one line per policy (and run). In-distribution and "
                         "out-of-distribution probes are separate panels.")
        for key in FIGURES:
            columns = [c for c in present if describe(c).figure == key]
            columns.sort(key=lambda c: list(METRICS).index(c) if c in METRICS else 10**6 + sorted(present).index(c))
            if columns:
                plot = guarded(f"collapse curves: {FIGURES[key].title}",
                               lambda k=key, cs=columns: figures.collapse_curves(k, cs, style, present), curves)
                if plot:
                    curves.plots.append(plot)
        missing = [c for c, m in METRICS.items() if c not in present and m.figure != "ii"]
        if missing:
            curves.notes.append(f"Not recorded by any run, so not drawn: {', '.join(missing)}.")
        unknown = analysis.unknown_columns(runs)
        non_numeric = [c for c in unknown if c not in present]
        if non_numeric:
            curves.notes.append(f"Non-numeric columns not drawn: {', '.join(non_numeric)}.")
        sections.append(curves)

        # accuracy against oracle cost
        cost = Section("oracle-cost", "Accuracy against oracle calls",
                       "What each policy's oracle calls buy: force RMSE against the cumulative oracle calls of its "
                       "lineage.")
        plot = guarded("accuracy against oracle calls", lambda: figures.accuracy_vs_oracle_calls(style), cost)
        if plot:
            cost.plots.append(plot)
        elif not cost.notes:
            cost.notes.append("No run records both force RMSE and oracle_calls_total; the figure is not drawn.")
        sections.append(cost)

        # information imbalance plane
        plane = Section("information-imbalance", "Information-imbalance plane",
                        "Δ(target → model) against Δ(model → target) for each generation; arrows follow each lineage.")
        for target in ("ref", "gen0", "prev"):
            plot = guarded(f"information plane ({target})", lambda t=target: figures.information_plane(t, style), plane)
            if plot:
                plane.plots.append(plot)
        if not plane.plots:
            plane.notes.append("No run records information imbalances (ii_* columns); the plane is not drawn.")
        sections.append(plane)

        # heatmaps
        heat = Section("alignment-heatmaps", "Generation × generation alignment")
        if heatmaps:
            from collapse_sim.report.embeddings import alignment_heatmaps

            result = guarded("alignment heatmaps", lambda: alignment_heatmaps(
                runs, k=cknna_k, max_lineages=max_heatmap_lineages), heat)
            if result is not None:
                plot = guarded("alignment heatmap figure", lambda: figures.heatmaps(result, style), heat)
                if plot:
                    heat.plots.append(plot)
                    heat.intro = (f"CKNNA between the saved in-distribution probe embeddings of "
                                  f"{result.generations_read} generation(s), in {result.seconds:.1f} s.")
                else:
                    heat.notes.extend(result.notes)
                if not result.heatmaps and not result.notes:
                    heat.notes.append("No lineage has saved probe embeddings; no heatmap drawn.")
        else:
            heat.notes.append("Heatmaps disabled (--no-heatmaps).")
        sections.append(heat)

        # ecosystem (runs with labs)
        from collapse_sim.report.ecosystem import section_content

        eco = Section("ecosystem", "Ecosystem",
                      "Labs sharing a commons (arXiv 2512.03750's measures): how alike the labs' representations "
                      "are, with and without the commons, and whether they group by architecture or by data.")
        for run in runs:
            content = guarded(f"ecosystem of {run.label}", lambda r=run: section_content(r), eco)
            if content:
                eco.plots.extend(content[0])
                eco.notes.extend(content[1])
        if eco.plots or eco.notes:
            sections.append(eco)

        def structure_figure(key: str, title: str, label: str, draw, empty_note: str | None) -> Section:
            """A section holding one figure drawn from the runs' structure files, plus its notes."""
            section = Section(key, title)
            res = guarded(label, draw, section)
            if res:
                plot, notes = res
                section.notes.extend(notes)
                if plot:
                    section.plots.append(plot)
                elif empty_note:
                    section.notes.append(empty_note)
            return section

        sections.append(structure_figure("provenance", "Data provenance", "provenance",
                                         lambda: data_figures.provenance(style, reader),
                                         "No readable training sets: provenance not drawn."))
        sections.append(structure_figure("distribution-drift", "Distribution drift", "distribution drift",
                                         lambda: data_figures.drift(style, reader), None))

    for section in sections:  # a figure that fails to render is a warning, as when it fails to draw
        for plot in list(section.plots):
            uri = guarded(f"rendering of {plot.title}", lambda p=plot: rendering.resolved(p.uri), section)
            if uri is None:
                section.plots.remove(plot)
            else:
                plot.uri = uri
    t = time.perf_counter()
    found = analysis.findings(runs, threshold)
    timings["findings"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        statistics = compare(runs, threshold)
    except Exception as exc:  # noqa: BLE001 - a damaged input must not end the report
        warnings.append(f"statistics over seeds could not be computed ({type(exc).__name__}: {exc})")
        statistics = None
    timings["statistics over seeds"] = time.perf_counter() - t
    context = build_context(runs, sections, found, warnings, general_notes, threshold)
    context |= {"statistics": statistics, "statistics_methods": METHODS, "wilcoxon_too_few": WILCOXON_TOO_FEW}
    from collapse_sim.report.render import render_html, render_markdown

    if figures_dir is not None:
        for plot in (p for section in sections for p in section.plots):
            atomic_write_bytes(Path(figures_dir) / f"{plot.id}.png", base64.b64decode(plot.uri.split(",", 1)[1]))
    html_path, md_path = out, out.with_suffix(".md")
    context["elapsed"] = time.perf_counter() - start
    for path, text in ((html_path, render_html(context)), (md_path, render_markdown(context, html_path.name))):
        atomic_write_text(path, text)
        _readable(path)
    return ReportResult(html_path, md_path, warnings, time.perf_counter() - start, timings)


def _readable(path: Path) -> None:
    """Atomic writes create owner-only files; a report is meant to be shared (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)
