"""The results pages show what their committed data gives: every table is regenerated from
docs/results/STUDY/data and compared with the committed table and page; a claim's wording
follows its interval and its number of seeds."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "results" / "scripts"))
sys.path.insert(0, str(ROOT / "docs" / "scripts"))

import build_results  # noqa: E402

from collapse_sim.report.statistics import paired  # noqa: E402


def test_every_table_and_page_matches_its_committed_data():
    stale = build_results.stale_files()
    assert not stale, ("differ from their committed data: " + ", ".join(str(p.relative_to(ROOT)) for p in stale)
                       + "; run python docs/results/scripts/build_results.py")


@pytest.mark.parametrize("study", sorted(build_results.STUDIES))
def test_a_generated_page_shows_every_table_of_its_study(study):
    text = (ROOT / "docs" / "results" / f"{study}.md").read_text()
    shown = set(re.findall(rf"<!-- table: results/{study}/tables/(\S+)\.csv -->", text))
    assert shown == {t.name for t in build_results.STUDIES[study].tables}


@pytest.mark.parametrize("a, b, expected", [
    ({s: 1.0 + 0.01 * s for s in range(5)}, {s: 2.0 for s in range(5)}, "separated: lower (better)"),
    ({s: 3.0 + 0.01 * s for s in range(5)}, {s: 2.0 for s in range(5)}, "separated: higher (worse)"),
    ({s: (-1) ** s for s in range(5)}, {s: 0.0 for s in range(5)}, "not separated"),
    ({s: 1.0 + 0.01 * s for s in range(4)}, {s: 2.0 for s in range(4)}, "preliminary (4 seeds)"),
])
def test_wording_follows_the_interval_and_the_seeds(a, b, expected):
    assert build_results.verdict(paired(a, b), higher_is_worse=True) == expected


def test_extract_keeps_a_run_that_compare_reads(tiny_run, tmp_path, monkeypatch):
    """``extract`` copies a finished run's scenario, its rows cut to the pages' columns and the
    reference model's errors; the copy is a run directory ``compare`` reads to the same numbers."""
    from collapse_sim.report.compare import compare
    from collapse_sim.report.rundata import load_run

    _, root, rows = tiny_run
    monkeypatch.setattr(build_results, "RESULTS", tmp_path)
    out = build_results.extract(root, "study")
    assert out == tmp_path / "study" / "data" / root.name
    assert (out / "scenario.yaml").read_text() == (root / "scenario.yaml").read_text()
    kept = [line for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    assert len(kept) == len(rows)
    assert all(all(map(build_results._kept, json.loads(line))) for line in kept)
    assert all("rmse_forces_id_Cu" in json.loads(line) for line in kept)  # per-element errors are kept
    assert not build_results._kept("rmse_forces_id_teacher_x") and not build_results._kept("cknna_gen0_Cu")
    assert build_results._kept("rmse_forces_held_out_Mg") and build_results._kept("rmse_forces_ood_O")
    reference = json.loads((out / "reference.json").read_text())
    assert reference and all(key.startswith("rmse_") for key in reference)
    column = ["rmse_forces_id"]
    original, copied = (compare([load_run(p)], 0.1, column, None, None, None) for p in (root, out))
    assert [s.summary.mean for m in copied.metrics for s in m.policies] == \
        [s.summary.mean for m in original.metrics for s in m.policies]


def test_check_names_a_stale_table_and_writes_nothing(monkeypatch, capsys):
    table = ROOT / "docs" / "results" / "study-cu" / "tables" / "forces-id.csv"
    before = table.read_text()
    real = build_results.expected_tables

    def changed(studies):
        return {path: text + ("x\n" if path == table else "") for path, text in real(studies).items()}

    monkeypatch.setattr(build_results, "expected_tables", changed)
    assert build_results.main(["--check", "--study", "study-cu"]) == 1
    out = capsys.readouterr().out
    assert "stale: docs/results/study-cu/tables/forces-id.csv" in out
    assert table.read_text() == before


def test_pareto_table_and_figure_from_committed_data(tmp_path, monkeypatch):
    """The oracle-cost table: every policy once, cheapest first, its calls and window error with
    an interval, the front marked where no policy is both cheaper and more accurate; the figure
    drawn from the same numbers."""
    import csv
    import io
    import shutil

    shutil.copytree(ROOT / "docs" / "results" / "study-cu" / "data", tmp_path / "study-cu" / "data")
    monkeypatch.setattr(build_results, "RESULTS", tmp_path)
    spec = build_results.Pareto("pareto", "study-cu-compute", (4, 6))
    rows = list(csv.reader(io.StringIO(build_results.pareto("study-cu", spec))))
    header, body = rows[0], rows[1:]
    assert header[2] == "oracle calls by generation 6" and header[4] == header[6] == "on the front"
    assert {r[0] for r in body} == {"replace", "accumulate", "fresh-real-0.25", "fresh-real-1.0"}
    calls = [float(r[2].split(" ± ")[0]) for r in body]
    assert sorted(zip(calls, (r[0] for r in body))) == list(zip(calls, (r[0] for r in body)))  # cheapest first
    id_error = [float(r[3].split(" (")[0]) for r in body]
    front = [r[4] == "yes" for r in body]
    for i in range(len(body)):  # on the front exactly when nothing is cheaper-or-equal and better
        beaten = any(calls[j] <= calls[i] and id_error[j] < id_error[i] for j in range(len(body)) if j != i)
        assert front[i] == (not beaten), body[i]
    assert build_results.pareto_figure("study-cu", spec).stat().st_size > 0
