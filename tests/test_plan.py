"""The plan: one expansion of a scenario (lineages, generation-0 groups, ecosystems), written to
plan.json and read back by everything that needs to know what a run holds."""
from __future__ import annotations

import ast
import copy
from pathlib import Path

from scenario_factory import tiny_scenario_dict

from collapse_sim.plan import Plan, build_plan
from collapse_sim.scenario import parse_scenario
from collapse_sim.store import RunStore

PACKAGE = Path(__file__).resolve().parents[1] / "collapse_sim"
LABS = [{"name": "a"}, {"name": "b", "real_data": {"n_structures": 10}}]


def _sweep():
    return parse_scenario(tiny_scenario_dict(seeds=[0, 1], sweep={"policies.fresh-real.real_fraction": [0.25, 0.5]}))


def _labs():
    return parse_scenario(tiny_scenario_dict(policies=[{"kind": "accumulate"}], labs=copy.deepcopy(LABS),
                                             commons={"fraction": 0.5, "k": 2}))


def test_a_sweep_plan_groups_generation_0_by_seed_and_runs_every_lineage_alone():
    plan = build_plan(_sweep())
    assert len(plan.lineages) == 2 * (2 + 2)  # seeds x (replace, accumulate, fresh-real at two fractions)
    assert [len(group) for group in plan.gen0_groups] == [4, 4]
    assert {spec.seed for spec in plan.gen0_groups[1]} == {1}
    assert [eco.members for eco in plan.ecosystems] == [(name,) for name in plan.names]
    assert plan.lineage("fresh-real@real_fraction=0.5-s1").policy.real_fraction == 0.5


def test_labs_form_one_ecosystem_per_commons_condition_and_seed():
    plan = build_plan(_labs())
    assert [(eco.name, eco.members, eco.commons) for eco in plan.ecosystems] == [
        ("on-s0", ("a@commons=on-s0", "b@commons=on-s0"), True),
        ("off-s0", ("a@commons=off-s0", "b@commons=off-s0"), True)]
    assert [len(group) for group in plan.gen0_groups] == [2, 2]  # a lab's on and off copies share generation 0


def test_plan_json_round_trip(tmp_path):
    for i, scenario in enumerate((_sweep(), _labs())):
        plan = build_plan(scenario)
        store = RunStore(tmp_path / str(i))
        store.root.mkdir()
        store.write_plan(plan.to_json())
        again = store.read_plan()
        assert isinstance(again, Plan) and again.lineages == plan.lineages and again.scenario == scenario
        assert again.ecosystems == plan.ecosystems


def test_a_run_without_plan_json_is_planned_from_its_scenario(tmp_path):
    scenario = _sweep()
    store = RunStore(tmp_path)
    assert store.plan() is None
    store.write_scenario(scenario.resolved_yaml())
    assert store.plan().names == build_plan(scenario).names


def test_the_run_writes_its_plan(tiny_run):
    scenario, root, _ = tiny_run
    assert RunStore(root).read_plan().names == build_plan(scenario).names


def test_only_the_plan_builder_expands_a_scenario():
    """grid_lineages and lab_lineages are called by build_plan (and by the sweep's own validation)."""
    allowed = {("plan.py", "grid_lineages"), ("plan.py", "lab_lineages"), ("sweep.py", "grid_lineages")}
    calls = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in (
                    "grid_lineages", "lab_lineages", "expand"):
                calls.add((path.name, getattr(node.func, "id", getattr(node.func, "attr", None))))
    assert calls <= allowed, calls - allowed
