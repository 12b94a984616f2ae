"""``build_report``: run directories in, report.html (self-contained) and report.md out. The
figure sections are ``sections.SECTIONS``, built in page order; the findings, the statistics over
seeds and the run details follow them on the page."""
from __future__ import annotations

import base64
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.measure.catalogue import ONSET_THRESHOLD
from collapse_sim.report import analysis, figures, png_workers
from collapse_sim.report.compare import METHODS, compare
from collapse_sim.report.context import build_context
from collapse_sim.report.datasets import SetReader
from collapse_sim.report.embeddings import DEFAULT_MAX_HEATMAP_LINEAGES
from collapse_sim.report.pages import render_html, render_markdown
from collapse_sim.report.rundata import NotARunDirectory, RunData, assign_labels, load_run
from collapse_sim.report.sections import SECTIONS, ReportData, Section
from collapse_sim.report.statistics import WILCOXON_TOO_FEW
from collapse_sim.report.style import policy_colours
from collapse_sim.runtime.atomic import atomic_write_bytes, atomic_write_text


@dataclass
class ReportResult:
    html: Path
    markdown: Path
    warnings: list[str]
    seconds: float
    timings: dict[str, float]


def build_report(run_dirs, out: Path, *, threshold: float = ONSET_THRESHOLD, cknna_k: int | None = None,
                 max_heatmap_lineages: int = DEFAULT_MAX_HEATMAP_LINEAGES, heatmaps: bool = True,
                 figures_dir: Path | None = None) -> ReportResult:
    """Write ``out`` (HTML) and ``out`` with suffix .md, and with ``figures_dir`` (a folder) every
    figure as ``<figure id>.png``. Raises ``NotARunDirectory`` for a path that is not a run
    directory; any damage inside a run directory becomes a warning. ``cknna_k`` overrides the
    CKNNA neighbour count each run recorded (``metrics.k``)."""
    start = time.perf_counter()
    timings: dict[str, float] = {}
    runs = _load_runs(run_dirs)
    timings["read run directories"] = time.perf_counter() - start
    warnings: list[str] = [w for r in runs for w in r.warnings]
    style = figures.Style(runs, policy_colours({lin.policy for r in runs for lin in r.lineages.values()}))
    data = ReportData(runs, style, SetReader(warnings.append), warnings, timings, cknna_k=cknna_k,
                      max_heatmap_lineages=max_heatmap_lineages, heatmaps=heatmaps)
    with figures.rc_context(), png_workers.parallel():
        sections = [section for build in SECTIONS if (section := build(data)) is not None]
    _resolve_figures(sections, data)
    context = _context(runs, sections, data, threshold)
    if figures_dir is not None:
        for plot in (p for section in sections for p in section.plots):
            atomic_write_bytes(Path(figures_dir) / f"{plot.id}.png", base64.b64decode(plot.uri.split(",", 1)[1]))
    html_path, md_path = Path(out), Path(out).with_suffix(".md")
    context["elapsed"] = time.perf_counter() - start
    for path, text in ((html_path, render_html(context)), (md_path, render_markdown(context, html_path.name))):
        atomic_write_text(path, text)
        _readable(path)
    return ReportResult(html_path, md_path, warnings, time.perf_counter() - start, timings)


def _load_runs(run_dirs) -> list[RunData]:
    """The run directories read and labelled; ``NotARunDirectory`` for none, or one given twice."""
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
    return runs


def _resolve_figures(sections: list[Section], data: ReportData) -> None:
    """Every figure's PNG resolved; one that fails to render is a warning, as when it fails to draw."""
    for section in sections:
        for plot in list(section.plots):
            uri = data.guarded(f"rendering of {plot.title}", lambda p=plot: png_workers.resolved(p.uri), section)
            if uri is None:
                section.plots.remove(plot)
            else:
                plot.uri = uri


def _context(runs: list[RunData], sections: list[Section], data: ReportData, threshold: float) -> dict:
    """What the templates read: the sections, the findings and the statistics over seeds."""
    t = time.perf_counter()
    found = analysis.findings(runs, threshold)
    data.timings["findings"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        statistics = compare(runs, threshold)
    except Exception as exc:  # noqa: BLE001 - a damaged input must not end the report
        data.warnings.append(f"statistics over seeds could not be computed ({type(exc).__name__}: {exc})")
        statistics = None
    data.timings["statistics over seeds"] = time.perf_counter() - t
    notes = [n for r in runs for n in r.notes]
    context = build_context(runs, sections, found, data.warnings, notes, threshold)
    return context | {"statistics": statistics, "statistics_methods": METHODS, "wilcoxon_too_few": WILCOXON_TOO_FEW}


def _readable(path: Path) -> None:
    """Atomic writes create owner-only files; a report is meant to be shared (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o666 & ~umask)
