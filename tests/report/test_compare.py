"""Policies compared over seeds: the numbers of ``compare`` on hand-made rows, the
``collapse-sim compare`` command and the report's "Statistics over seeds" section."""
from __future__ import annotations

import json
import math
import random

import pytest

from collapse_sim.cli import main
from collapse_sim.report import build_report
from collapse_sim.report.compare import compare, to_markdown
from collapse_sim.report.rundata import assign_labels, load_run

# generation 0 (shared by the lineages of a seed) and the last generation, per policy and seed
GEN0 = {"rmse_forces_id": [50.0, 50.0, 50.0], "vendi_train": [20.0, 20.0, 20.0]}
LAST = {
    "replace": {"rmse_forces_id": [60.0, 70.0, 65.0], "vendi_train": [10.0, 14.0, 12.0]},
    # every seed 8 meV/Å better than replace; Vendi differences -1, +1, -0.5: overlapping
    "accumulate": {"rmse_forces_id": [52.0, 62.0, 57.0], "vendi_train": [9.0, 15.0, 11.5]},
}


def _run(root, last=LAST, generations=3, shuffle=False):
    """A run directory with only metrics.jsonl: three seeds, generations 0..generations-1."""
    root.mkdir(parents=True)
    rows = []
    for policy, columns in last.items():
        for seed in range(3):
            for g in range(generations):
                values = {c: (GEN0[c][seed] if g == 0 else (GEN0[c][seed] + v[seed]) / 2 if g < generations - 1
                              else v[seed]) for c, v in columns.items()}
                rows.append({"policy": policy, "policy_kind": policy, "lineage": f"{policy}-s{seed}", "seed": seed,
                             "generation": g, **values})
    if shuffle:
        random.Random(7).shuffle(rows)
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def _compare(root, **kwargs):
    run = load_run(root)
    assign_labels([run])
    return compare([run], 0.2, **kwargs), run


def test_per_policy_summary_and_threshold_counts(tmp_path):
    result, _ = _compare(_run(tmp_path / "r"))
    assert result.generation == 2 and result.baseline == "replace"
    forces = next(m for m in result.metrics if m.metric.column == "rmse_forces_id")
    replace, accumulate = forces.policies  # the baseline first
    assert replace.policy == "replace" and accumulate.policy == "accumulate"
    # replace: 60, 70, 65 -> mean 65, sample std 5, SE 5 / sqrt(3); t(0.975, 2) = 4.3027
    assert (replace.summary.n, replace.summary.mean) == (3, 65.0)
    assert replace.summary.sem == pytest.approx(5 / math.sqrt(3))
    assert replace.summary.high == pytest.approx(65 + 4.302653 * 5 / math.sqrt(3))
    # +20 % (not beyond), +40 %, +30 % vs 50; accumulate +4 %, +24 %, +14 %
    assert (replace.past, replace.with_gen0) == (2, 3)
    assert (accumulate.past, accumulate.with_gen0) == (1, 3)
    vendi = next(m for m in result.metrics if m.metric.column == "vendi_train")
    assert [s.past for s in vendi.policies] == [3, 3]  # -50 %, -30 %, -40 % and -55 %, -25 %, -42.5 %


def test_paired_differences_and_verdicts(tmp_path):
    result, _ = _compare(_run(tmp_path / "r"))
    forces, = (m.contrasts for m in result.metrics if m.metric.column == "rmse_forces_id")
    vendi, = (m.contrasts for m in result.metrics if m.metric.column == "vendi_train")
    assert forces[0].policy == "accumulate" and forces[0].difference.diff.low == forces[0].difference.diff.high == -8.0
    assert forces[0].verdict == "separated at 95 %: lower than replace (better)"
    assert vendi[0].verdict == "not separated at 95 % (the 95 % interval of the difference includes 0)"


def test_a_window_compares_each_seeds_mean_over_its_generations(tmp_path):
    result, run = _compare(_run(tmp_path / "r"), window=(1, 2))
    forces = next(m for m in result.metrics if m.metric.column == "rmse_forces_id")
    replace, accumulate = forces.policies
    # generation 1 = (50 + last) / 2, generation 2 = last: replace 57.5, 65, 61.25; accumulate 51.5, 59, 55.25
    assert replace.summary.mean == pytest.approx((57.5 + 65 + 61.25) / 3)
    d = forces.contrasts[0].difference
    assert d.n == 3 and d.diff.low == pytest.approx(-6.0) and d.diff.high == pytest.approx(-6.0)
    assert result.title == "generations 1–2 (each seed's mean over them)"
    assert "# Policy comparison at generations 1–2" in to_markdown(result, [run])
    # a seed without every generation of the window is left out, not averaged over fewer
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    kept = [r for r in rows if not (r["lineage"] == "replace-s0" and r["generation"] == 1)]
    (tmp_path / "r" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    forces = next(m for m in _compare(tmp_path / "r", window=(1, 2))[0].metrics if m.metric.column == "rmse_forces_id")
    assert forces.policies[0].summary.n == 2 and forces.contrasts[0].difference.n == 2


def test_rows_in_any_order_give_the_same_comparison(tmp_path):
    ordered, run = _compare(_run(tmp_path / "a"))
    shuffled, run_b = _compare(_run(tmp_path / "b", shuffle=True))
    run_b.label = run.label
    assert to_markdown(shuffled, [run_b]) == to_markdown(ordered, [run])


def test_too_few_seeds_are_named(tmp_path):
    two = {p: {c: v[:2] + [math.nan] for c, v in cols.items()} for p, cols in LAST.items()}
    result, _ = _compare(_run(tmp_path / "r", last=two))
    assert any("too few seeds at generation 2 for accumulate (2), replace (2)" in w for w in result.warnings)
    assert all(k.verdict == "not separated at 95 % (only 2 paired seed(s), fewer than 3)"
               for m in result.metrics for k in m.contrasts)


def test_cli_prints_and_writes_the_tables(tmp_path, capsys):
    run_dir = _run(tmp_path / "r")
    out = tmp_path / "nested" / "compare.md"
    code = main(["compare", str(run_dir), "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out == out.read_text()
    text = captured.out
    assert "# Policy comparison at generation 2" in text and "Baseline: `replace`" in text
    assert "paired t-test (scipy.stats.ttest_rel" in text and "Wilcoxon signed-rank test" in text
    assert "| replace | 65 ± 2.89 | [52.6, 77.4] | 3 | 2 / 3 |" in text
    assert ("| accumulate | 3 | -8 | [-8, -8] | < 0.001 | 0.25 † | separated at 95 %: lower than replace (better) |"
            in text)
    assert "† with fewer than 6 pairs the Wilcoxon signed-rank test cannot reach p < 0.05" in text

    code = main(["compare", str(run_dir), "--metric", "vendi_train", "--generation", "1", "--baseline",
                 "accumulate", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0 and "at generation 1" in text and "rmse_forces_id" not in text
    assert "Paired differences (policy − accumulate)" in text and "| replace | 3 |" in text


@pytest.mark.parametrize("args, option", [
    (["--metric", "rmse_nothing"], "--metric rmse_nothing"),
    (["--baseline", "fresh-real"], "--baseline fresh-real"),
    (["--generation", "7"], "--generation 7"),
    (["--generations", "1-7"], "--generations 1-7"),
    (["--generations", "0-2"], "--generations 0-2"),
    (["--generations", "two"], "--generations two"),
    (["--generations", "1-2", "--generation", "2"], "--generations"),
    (["--threshold", "-0.1"], "--threshold"),
])
def test_cli_bad_options_write_nothing(tmp_path, capsys, args, option):
    run_dir = _run(tmp_path / "r")
    out = tmp_path / "out" / "compare.md"
    code = main(["compare", str(run_dir), *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"collapse-sim: error: {option}")
    assert not out.parent.exists()


def test_cli_rejects_a_path_that_is_not_a_run_directory(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "compare.md"
    for bad in (tmp_path / "empty", tmp_path / "missing"):
        code = main(["compare", str(bad), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and str(bad) in err
    assert not out.exists()


def test_report_has_the_statistics_section(tmp_path):
    result = build_report([_run(tmp_path / "r")], tmp_path / "report.html", heatmaps=False)
    html, md = result.html.read_text(), result.markdown.read_text()
    assert '<section id="statistics">' in html and 'id="statistics-table"' in html
    assert "paired t-test (scipy.stats.ttest_rel" in html and "<strong>separated at 95 %: lower than replace" in html
    assert "## Statistics over seeds" in md and "Headline metrics at generation 2" in md
    assert "| force RMSE (ID) [meV/Å] | accumulate | 3 | -8 | [-8, -8] | < 0.001 | 0.25 † |" in md
    assert "not separated at 95 % (the 95 % interval of the difference includes 0)" in md
