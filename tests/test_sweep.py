"""Sweep axes: grid expansion, generation-0 sharing, errors naming the axis, and a small sweep run."""

import pytest
from conftest import run_scenario
from scenario_factory import tiny_scenario_dict

from collapse_sim.cli import main
from collapse_sim.plan import build_plan
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.store import RunStore

MODELS = ["4x0e+4x1o", "8x0e+8x1o"]


def sweep_dict(**axes) -> dict:
    data = tiny_scenario_dict(policies=[{"kind": "replace"}, {"kind": "fresh-real", "real_fraction": 0.25}])
    data["sweep"] = axes
    return data


def test_policy_axis_multiplies_only_that_policy():
    specs = build_plan(parse_scenario(sweep_dict(**{"policies.fresh-real.real_fraction": [0.1, 0.5, 1.0]}))).lineages
    assert [s.name for s in specs] == ["replace-s0", "fresh-real@real_fraction=0.1-s0",
                                       "fresh-real@real_fraction=0.5-s0", "fresh-real@real_fraction=1.0-s0"]
    assert [s.policy.real_fraction for s in specs[1:]] == [0.1, 0.5, 1.0]
    assert len({s.gen0_key for s in specs}) == 1  # the policy does not shape generation 0


def test_model_axis_and_seeds_form_a_grid_with_one_generation_0_per_model_and_seed():
    data = sweep_dict(**{"model.hidden_irreps": MODELS, "policies.1.real_fraction": [0.1, 0.5]})
    data["seeds"] = [0, 1]
    specs = build_plan(parse_scenario(data)).lineages
    assert len(specs) == 2 * 2 * (1 + 2)  # seeds x models x (replace + 2 fresh-real)
    assert len({s.name for s in specs}) == len(specs)
    assert len({s.gen0_key for s in specs}) == 4  # seeds x models
    for spec in specs:
        assert spec.scenario.model.hidden_irreps in spec.name and spec.scenario.sweep == {}


def test_no_sweep_keeps_the_plain_lineage_names():
    specs = build_plan(parse_scenario(tiny_scenario_dict())).lineages
    assert [s.name for s in specs] == ["replace-s0", "accumulate-s0", "fresh-real-s0"]
    assert {s.point for s in specs} == {""}


@pytest.mark.parametrize("axes, message", [
    ({"model.no_such_field": [1]}, "sweep.model.no_such_field: no field 'model.no_such_field'"),
    ({"probes.id.n_structures": [8]}, "'probes' cannot be swept"),
    ({"seeds": [[0], [1]]}, "seeds are always an axis"),
    ({"policies.accumulate.budget": [4]}, "no policy named 'accumulate'"),
    ({"model": [{}]}, "sweep a single field"),
    ({"model.epochs": []}, "sweep.model.epochs: give at least one value"),
    ({"model.epochs": [2, -1]}, "sweep point model.epochs=-1: model.epochs"),
    ({"generations": [1, 2]}, "'generations' cannot be swept"),
    ({"model.radial_MLP.x": [8]}, "sweep.model.radial_MLP.x: no list entry 'x'"),
    ({"real_data.recipes.md.temperature_K": [300]}, "no list entry 'md'"),
    ({"policies.replace.kind": ["accumulate"]}, "a policy's kind cannot be swept"),
    ({"policies.fresh-real.real_fraction": [0.1], "policies.1.real_fraction": [0.2]},
     "sweep.policies.1.real_fraction: the same field as sweep.policies.fresh-real.real_fraction"),
    ({"synthetic.sampler.kind": ["langevin", "rattle"]}, "sweep point synthetic.sampler.kind='rattle'"),
    ({"policies.fresh-real.real_fraction": [0.5, "0.5"]}, "different values give the same lineage name"),
])
def test_bad_axes_are_one_line_errors_naming_the_axis(axes, message):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(sweep_dict(**axes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_dry_run_prints_the_grid_and_writes_nothing(tmp_path, capsys):
    import yaml

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(sweep_dict(**{"policies.fresh-real.real_fraction": [0.1, 0.5]})))
    assert main(["sweep", str(path), "--dry-run", "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "3 lineage(s), 1 distinct generation 0(s)" in out and "fresh-real@real_fraction=0.5-s0" in out
    assert not (tmp_path / "runs").exists()


def test_sweep_run_shares_generation_0_only_where_identical(tmp_path):
    data = sweep_dict(**{"model.hidden_irreps": MODELS, "policies.fresh-real.real_fraction": [0.25, 0.5]})
    data.update(generations=1, metrics={"enabled": False}, probes=None)
    scenario = parse_scenario(data)
    root, rows = run_scenario(tmp_path, scenario)
    specs = build_plan(scenario).lineages
    assert len(rows) == 2 * len(specs) and {r["lineage"] for r in rows} == {s.name for s in specs}
    gen0 = {r["lineage"]: (r["model_hash"], r["train_seconds"]) for r in rows if r["generation"] == 0}
    for model in MODELS:  # trained once per model and copied: even the wall time is the same float
        assert len({v for name, v in gen0.items() if model in name}) == 1
    assert len(set(gen0.values())) == 2  # not across models
    by_name = {r["lineage"]: r for r in rows if r["generation"] == 1}
    assert by_name[f"fresh-real@model.hidden_irreps={MODELS[1]},real_fraction=0.5-s0"]["n_real"] == 4  # 0.5 of 8
    assert by_name[f"fresh-real@model.hidden_irreps={MODELS[1]},real_fraction=0.25-s0"]["n_real"] == 2
    replace_points = {r["sweep_point"] for r in rows if r["policy_kind"] == "replace"}
    assert replace_points == {f"model.hidden_irreps={m}" for m in MODELS}
    assert all(RunStore(root).status(s.name)["stage"] == "done" for s in specs)


def test_validate_theory_refuses_a_sweep():
    from collapse_sim.theory import TheoryError, experiment_kind

    scenario = parse_scenario(sweep_dict(**{"policies.fresh-real.real_fraction": [0.1, 0.5]}))
    with pytest.raises(TheoryError, match="sweep"):
        experiment_kind(scenario)
