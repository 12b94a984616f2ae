"""Reading runs from Python: ``write_report`` (the HTML page and its Markdown summary) and ``compare``
(policies over seeds, as tables a notebook can use and as Markdown). Both check every option
and path before writing anything."""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from collapse_sim.errors import UsageError
from collapse_sim.measure.catalogue import ONSET_THRESHOLD
from collapse_sim.report import DEFAULT_MAX_HEATMAP_LINEAGES, NotARunDirectory, ReportResult

__all__ = ["CompareResult", "ReportResult", "compare", "write_report"]


def _paths(run_dirs) -> list[Path]:
    """One run or several, each a path or a ``Run`` (anything with a ``root``), as paths."""
    single = isinstance(run_dirs, (str, os.PathLike)) or not isinstance(run_dirs, Iterable)
    items = [run_dirs] if single else run_dirs
    return [Path(r) if isinstance(r, (str, os.PathLike)) else Path(r.root) for r in items]


def load_runs(paths: list[Path]) -> list:
    """The runs at ``paths``, each read once and labelled apart (``report.rundata.RunData``); a
    directory that is not a run, or one given twice, is a UsageError."""
    from collapse_sim.report.rundata import assign_labels, load_run

    try:
        if len({p.resolve() for p in paths}) < len(paths):
            raise NotARunDirectory("a run directory is given twice")
        runs = [load_run(p) for p in paths]
    except NotARunDirectory as exc:
        raise UsageError(str(exc)) from None
    assign_labels(runs)
    return runs


def _check_threshold(threshold: float) -> None:
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0):
        raise UsageError(f"--threshold {threshold}: must be a positive number (0.2 = 20%)")


def write_report(run_dirs, out: str | os.PathLike = "report.html", *, threshold: float = ONSET_THRESHOLD,
           cknna_k: int | None = None, max_heatmap_lineages: int = DEFAULT_MAX_HEATMAP_LINEAGES,
           heatmaps: bool = True, figures_dir: str | os.PathLike | None = None) -> ReportResult:
    """Write the report of ``run_dirs`` (one or more run directories or ``Run`` objects): ``out``
    (self-contained HTML) and ``out`` with suffix .md; with ``figures_dir``, every figure as
    ``<figure id>.png`` there too. ``threshold``: the relative degradation against generation 0
    that marks a collapse onset; ``cknna_k``: neighbours of the generation x generation CKNNA
    heatmaps (default: the scenario's ``metrics.k``). Damage inside a run directory becomes a
    warning of the result, not an error."""
    from collapse_sim.report import build_report, check_run_directory

    paths, out = _paths(run_dirs), Path(out)
    figures_dir = None if figures_dir is None else Path(figures_dir)
    _check_threshold(threshold)
    if cknna_k is not None and cknna_k < 1:
        raise UsageError(f"--cknna-k {cknna_k}: must be >= 1")
    if max_heatmap_lineages < 0:
        raise UsageError(f"--max-heatmap-lineages {max_heatmap_lineages}: must be >= 0")
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give the HTML file to write")
    try:
        for path in paths:
            check_run_directory(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        if figures_dir is not None:
            figures_dir.mkdir(parents=True, exist_ok=True)
    except NotARunDirectory as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise UsageError(f"--out {out} / --figures {figures_dir}: cannot create the folder ({exc.strerror})") from None
    try:
        return build_report(paths, out, threshold=threshold, cknna_k=cknna_k,
                            max_heatmap_lineages=max_heatmap_lineages, heatmaps=heatmaps, figures_dir=figures_dir)
    except NotARunDirectory as exc:
        raise UsageError(str(exc)) from None


@dataclass(frozen=True)
class CompareResult:
    """Policies compared over seeds. ``comparison`` holds the tables as data (per metric, each
    policy's summary and its paired difference from the baseline); ``table`` flattens them into
    records (one per metric and policy); ``markdown`` is what ``collapse-sim compare`` prints."""

    comparison: object  # collapse_sim.report.compare.Comparison
    markdown: str
    run_warnings: list[str]  # damage found in the run directories ('collapse-sim report' shows them all)
    path: Path | None  # the Markdown file written, if ``out`` was given

    @property
    def table(self) -> list[dict]:
        records = []
        for m in self.comparison.metrics:
            differences = {k.policy: k for k in m.contrasts}
            for s in m.policies:
                record = dict(metric=m.metric.column, policy=s.policy, seeds=s.summary.n, mean=s.summary.mean,
                              sem=s.summary.sem, low=s.summary.low, high=s.summary.high, past_threshold=s.past,
                              with_gen0=s.with_gen0)
                if (k := differences.get(s.policy)) is not None:
                    d = k.difference
                    record.update(pairs=d.n, diff_mean=d.diff.mean, diff_low=d.diff.low, diff_high=d.diff.high,
                                  t_p=d.t_p, wilcoxon_p=d.wilcoxon_p, verdict=k.verdict)
                records.append(record)
        return records

    def to_dataframe(self):
        """``table`` as a pandas DataFrame."""
        from collapse_sim.api.frames import records_frame

        return records_frame(self.table, "CompareResult", "table")


def _window(generations) -> tuple[int, int] | None:
    """``generations`` as (first, last): given as a pair or as the text 'A-B'."""
    if generations is None:
        return None
    if isinstance(generations, str):
        first, sep, last = generations.partition("-")
        if sep and first.strip().isdigit() and last.strip().isdigit():
            return int(first), int(last)
    elif len(pair := tuple(generations)) == 2 and all(isinstance(g, int) for g in pair):
        return pair
    raise UsageError(f"--generations {generations}: give two generations as A-B, e.g. 6-10")


def compare(run_dirs, *, metrics: list[str] | None = None, generation: int | None = None, generations=None,
            baseline: str | None = None, threshold: float = ONSET_THRESHOLD,
            out: str | os.PathLike | None = None) -> CompareResult:
    """Compare the policies of ``run_dirs`` (paths or ``Run`` objects, pooled by policy name) over
    seeds at ``generation`` (default: the last), or each seed's mean over ``generations``
    ((first, last) or 'A-B'), for ``metrics`` (default: the headline columns the runs record),
    against ``baseline`` (default: replace if present, else the first policy alphabetically).
    With ``out``, the Markdown is also written there."""
    from collapse_sim.report.compare import CompareError, to_markdown
    from collapse_sim.report.compare import compare as compare_runs

    paths, window = _paths(run_dirs), _window(generations)
    _check_threshold(threshold)
    out = None if out is None else Path(out)
    if out is not None and out.is_dir():
        raise UsageError(f"--out {out}: is a directory; give the Markdown file to write")
    runs = load_runs(paths)
    try:
        result = compare_runs(runs, threshold, metrics, generation, baseline, window)
    except CompareError as exc:
        raise UsageError(str(exc)) from None
    text = to_markdown(result, runs)
    if out is not None:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text)  # after every check: an error leaves nothing written
        except OSError as exc:
            raise UsageError(f"--out {out}: cannot write it ({exc.strerror})") from None
    return CompareResult(result, text, [w for r in runs for w in r.warnings], out)
