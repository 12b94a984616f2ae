"""report.html and report.md rendered from the package's Jinja2 templates, and the number
formats (template filters) they and the comparison tables use."""
from __future__ import annotations

import math

import jinja2


def fmt(value, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; '—' for missing values."""
    if value is None or isinstance(value, bool):
        return "—"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return "—"
        if isinstance(value, int) or (abs(value) >= 10 ** digits and float(value).is_integer()):
            return f"{int(value):,}"
        return f"{value:.{digits}g}"
    return str(value)


def pct(value) -> str:
    return "—" if value is None else f"{value * 100:+.0f} %"


def interval(low, high) -> str:
    """A confidence interval as '[low, high]'; '—' where it is undefined (fewer than two seeds)."""
    return "—" if fmt(low) == "—" or fmt(high) == "—" else f"[{fmt(low)}, {fmt(high)}]"


def pvalue(p) -> str:
    """A p-value to two significant digits, '< 0.001' below that; '—' where the test is undefined."""
    if fmt(p) == "—":
        return "—"
    return "< 0.001" if p < 1e-3 else f"{p:.2g}"


def seconds(value) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f} s"
    if value < 7200:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.2f} h"


def md_cell(text) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("collapse_sim.report", "templates"),
                             autoescape=autoescape, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(fmt=fmt, pct=pct, seconds=seconds, md=md_cell, interval=interval, pvalue=pvalue)
    return env


def render_html(context: dict) -> str:
    return _environment(True).get_template("report.html.j2").render(**context)


def render_markdown(context: dict, html_name: str) -> str:
    return _environment(False).get_template("report.md.j2").render(html_name=html_name, **context)
