"""The report's accuracy-against-oracle-calls figure, from a small run that records oracle calls
(linear model: seconds), and its absence note when no run records them."""
import json

import pytest
from conftest import run_scenario
from scenario_factory import tiny_scenario_dict

from collapse_sim.report import build_report
from collapse_sim.scenario import parse_scenario

POLICIES = [{"kind": "replace"}, {"kind": "fresh-real", "real_fraction": 0.25},
            {"kind": "active", "lo": 0.065, "hi": 0.07, "max_oracle": 3}]


def small_run(tmp_path):
    scenario = parse_scenario(tiny_scenario_dict(policies=POLICIES, model={"kind": "linear"}))
    return run_scenario(tmp_path, scenario)


@pytest.mark.integration  # a run and two whole reports (12 s): the full suite's tier
def test_accuracy_vs_oracle_calls_renders_and_says_when_absent(tmp_path):
    root, rows = small_run(tmp_path)
    assert all(r["oracle_calls_total"] is not None and "rmse_forces_ood" in r for r in rows)
    result = build_report([root], tmp_path / "report.html", heatmaps=False)
    text = result.html.read_text()
    assert '<section id="oracle-cost"' in text and 'id="fig-oracle-cost"' in text
    assert not any("oracle calls" in w for w in result.warnings), result.warnings
    assert "Accuracy against oracle calls" in result.markdown.read_text()
    assert "rmse_forces_id at the last generation — Pareto front: " in text  # the front, named with its price
    # a run that records no oracle calls: the section stays, with a note instead of the figure
    path = root / "metrics.jsonl"
    path.write_text("".join(json.dumps(json.loads(line) | {"oracle_calls_total": None}) + "\n"
                            for line in path.read_text().splitlines() if line.strip()))
    for m in root.glob("*/gen-*/metrics.json"):
        m.write_text(json.dumps(json.loads(m.read_text()) | {"oracle_calls_total": None}))
    text = build_report([root], tmp_path / "again.html", heatmaps=False).html.read_text()
    assert '<section id="oracle-cost"' in text and 'id="fig-oracle-cost"' not in text
    assert "No run records both force RMSE and oracle_calls_total" in text
