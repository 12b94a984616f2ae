"""The molecules scenario end to end, shrunk to seconds: GFN2-xTB real data and probes, MACE on
isolated molecules, model MD without a cell, every policy, the metric suite on ID and OOD probes."""
import math

import pytest
from conftest import run_scenario
from scenario_factory import tiny_molecules

from collapse_sim.data.io import read_structures
from collapse_sim.scenario import parse_scenario
from collapse_sim.store import RunStore

pytestmark = pytest.mark.integration  # a whole (tiny) run with an xTB oracle: about a minute


def test_a_tiny_molecules_scenario_runs_end_to_end(tmp_path):
    scenario = parse_scenario(tiny_molecules())
    root, rows = run_scenario(tmp_path, scenario)
    assert len(rows) == 3 * 3  # three policies, generations 0..2
    ood = read_structures(RunStore(root).probe_path("ood"))
    assert {a.get_chemical_formula() for a in ood} == {"C8H9NO2"}  # the OOD probe: paracetamol only
    for row in rows:
        for column in ("rmse_forces_id", "rmse_forces_ood", "cknna_ref_id", "cknna_ref_ood", "coverage_train"):
            assert math.isfinite(row[column]), (row["lineage"], row["generation"], column)
        assert row["metric_warnings"] == []
    # the report draws ID and OOD panels and, for molecules, the bond-length drift histograms
    from collapse_sim.report import build_report

    text = build_report([root], tmp_path / "report.html").html.read_text()
    assert 'id="fig-accuracy"' in text and 'id="fig-drift"' in text
    assert "bond length" in text and "median for its element pair" in text
