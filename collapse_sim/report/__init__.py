"""The collapse report: one self-contained HTML page (figures embedded as base64 PNG) plus a
Markdown summary, built from one or more run directories.

    from collapse_sim.report import build_report
    build_report(["runs/quickstart"], Path("report.html"))

Modules: ``style`` (figure titles and captions per metric family, policy colours, run
line styles; what each column means is ``collapse_sim.measure.catalogue``), ``rundata``
(tolerant reading of run directories through ``collapse_sim.store``), ``datasets`` (provenance and
distributions of stored structures), ``embeddings`` (generation × generation CKNNA from the
probe embeddings each generation saved), ``analysis`` (curves, collapse onsets, stage times),
``context`` (the header facts and the software and machine records the templates show),
``statistics`` (intervals and paired tests over seeds), ``compare`` (policies against a baseline:
``collapse-sim compare`` and the statistics section), ``figures`` (matplotlib, Agg canvas),
``png_workers`` (figures rendered to PNG in worker processes), ``sections`` (one builder per
figure section), ``pages`` (Jinja2 templates in ``templates/``), ``build``.
"""
from collapse_sim.report.build import DEFAULT_MAX_HEATMAP_LINEAGES, ReportResult, build_report
from collapse_sim.report.rundata import NotARunDirectory, check_run_directory

__all__ = ["DEFAULT_MAX_HEATMAP_LINEAGES", "NotARunDirectory", "ReportResult", "build_report", "check_run_directory"]
