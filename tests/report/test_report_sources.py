"""Where the report takes its numbers and records from: the CKNNA neighbour count from the run's
recorded scenario, the onset threshold from the column catalogue, the environment from the
store's record, the figure sections from one ordered list of builders."""
from __future__ import annotations

import inspect
import json

from collapse_sim.measure.catalogue import ONSET_THRESHOLD
from collapse_sim.report import build_report
from collapse_sim.report.embeddings import DEFAULT_K, recorded_k
from collapse_sim.report.rundata import RunData, load_run
from collapse_sim.report.sections import SECTIONS, ReportData, ecosystem
from collapse_sim.scenario import MetricSettings
from collapse_sim.store import RunStore


def test_cknna_k_is_the_one_the_run_recorded(tmp_path):
    assert recorded_k(RunData(tmp_path, "r", scenario={"metrics": {"k": 7}})) == 7
    assert DEFAULT_K == MetricSettings().k  # the settings' default, not a second number
    for scenario in (None, {}, {"metrics": {"k": 0}}, {"metrics": {"k": True}}, {"metrics": "?"}):
        assert recorded_k(RunData(tmp_path, "r", scenario=scenario)) == DEFAULT_K


def test_the_default_threshold_is_the_catalogue_s():
    assert inspect.signature(build_report).parameters["threshold"].default is ONSET_THRESHOLD


def test_the_environment_is_the_store_s_record_only(tmp_path):
    store = RunStore(tmp_path)
    store.metrics_path.write_text(json.dumps({"lineage": "replace-s0", "generation": 0}) + "\n")
    store.environment_path.write_text(json.dumps({"machine": {"python": "3.11"}, "started": "x"}))
    (tmp_path / "machine.json").write_text(json.dumps({"python": "2.7"}))  # nothing writes it: not read
    assert load_run(tmp_path).recorded_env == {"environment.machine.python": "3.11", "environment.started": "x"}


def test_sections_are_built_in_page_order_and_empty_ones_left_out(tmp_path):
    assert [build.__name__ for build in SECTIONS] == [
        "collapse_curves", "oracle_cost", "information_imbalance", "alignment_heatmaps", "ecosystem", "provenance",
        "distribution_drift"]
    run = RunData(tmp_path, "r", scenario={"name": "r"})  # no labs
    data = ReportData([run], None, None, [], {}, cknna_k=None, max_heatmap_lineages=1, heatmaps=False)
    assert ecosystem(data) is None


def test_an_ecosystem_summary_rebuilt_reads_as_the_file_holds_it(tmp_path, monkeypatch):
    """A labs run without ecosystem.json: the summary rebuilt from the saved embeddings has the
    file's string keys (the Ecosystem section indexes generations and seeds by them)."""
    from scenario_factory import tiny_scenario_dict

    import collapse_sim.measure.ecosystem as measure_ecosystem
    from collapse_sim.report.ecosystem import load_summary
    from collapse_sim.scenario import parse_scenario

    labs = [{"name": "a"}, {"name": "b"}]
    scenario = parse_scenario(tiny_scenario_dict(policies=[{"kind": "accumulate"}], labs=labs, commons={"k": 2}))
    RunStore(tmp_path).write_scenario(scenario.resolved_yaml())
    monkeypatch.setattr(measure_ecosystem, "ecosystem_summary",
                        lambda store, scenario: {"trees": {0: {}}, "ecosystems": {"on-s0": {"generations": {1: {}}}}})
    summary = load_summary(load_run(tmp_path))
    assert summary == {"trees": {"0": {}}, "ecosystems": {"on-s0": {"generations": {"1": {}}}}}
