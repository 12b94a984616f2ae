"""The column catalogue is the one list of metrics.jsonl columns: the table of docs/metrics.md is
its rendering, and every pattern has one unit, direction and meaning."""
import re
from pathlib import Path

from collapse_sim.measure.catalogue import (
    FIELDS,
    METRICS,
    PER_ELEMENT,
    PLACEHOLDERS,
    SECONDS_SUFFIX,
    describe,
    is_curve_column,
    markdown_table,
)

METRICS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"


def test_metrics_page_holds_the_catalogue_rendering():
    assert markdown_table() in METRICS_PAGE.read_text(encoding="utf-8"), (
        "docs/metrics.md's column table differs from the catalogue; run python docs/scripts/gen_docs.py")


def test_every_pattern_has_one_meaning_and_expands_its_placeholders():
    by_pattern = {}
    for m in METRICS.values():
        by_pattern.setdefault(m.pattern, set()).add((m.unit, m.degrade, m.meaning))
        assert "{" not in m.column and m.meaning
    assert all(len(v) == 1 for v in by_pattern.values()), by_pattern
    names = {p.name for p in PLACEHOLDERS}
    for pattern in by_pattern:
        assert set(re.findall(r"{(\w+)}", pattern)) <= names, pattern
    for m in PER_ELEMENT:  # open placeholder values: a template per probe set, listed in the docs/metrics.md table
        assert m.column.endswith("_{element}") and f"`{m.pattern}`" in markdown_table()
        assert describe(m.column.replace("{element}", "O")).pattern == m.pattern


def test_fields_and_metrics_do_not_overlap():
    fields = [c for f in FIELDS for c in f.columns]
    assert len(fields) == len(set(fields)) and not set(fields) & set(METRICS)
    assert all(not is_curve_column(c) for f in FIELDS if f.role != "record" for c in f.columns)
    assert all(c.endswith(SECONDS_SUFFIX) for f in FIELDS if f.role == "timing" for c in f.columns)
    assert describe("gauss_var").figure == "other" and describe("rmse_energy_id") is METRICS["rmse_energy_id"]
