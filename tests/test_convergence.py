"""``collapse-sim converge``: generation 0 retrained exactly as the run trains it, a ladder of
budgets and sizes around it, and the verdict against its plateau."""
from __future__ import annotations

import csv
import json

import pytest
from scenario_factory import tiny_scenario_dict

import collapse_sim
from collapse_sim.cli import main
from collapse_sim.convergence import summarise


def test_generation_zero_is_the_runs_and_the_ladder_brackets_it(tiny_run, tmp_path):
    scenario, _, run_rows = tiny_run
    result = collapse_sim.converge(tiny_scenario_dict(), tmp_path, budgets=[0.5, 2.0], sizes=[1.0, 2.0], seeds=1,
                                   local=True)
    gen0 = next(r for r in run_rows if r["generation"] == 0)
    own = [r for r in result.rows if r["own"] and r["n_structures"] == scenario.real_data.n_structures]
    assert len(own) == 1  # one seed
    assert own[0]["rmse_forces_id"] == pytest.approx(gen0["rmse_forces_id"], rel=1e-9)
    assert own[0]["rmse_forces_ood"] == pytest.approx(gen0["rmse_forces_ood"], rel=1e-9)
    ladder = [r for r in result.rows if not r["own"]]
    n0, base = scenario.real_data.n_structures, own[0]["steps"]
    assert {r["n_structures"] for r in ladder} == {n0, 2 * n0}
    for budget in (0.5, 2.0):  # whole passes: at least the steps asked for, less than one pass more
        steps = [r["steps"] for r in ladder if r["n_structures"] == n0]
        assert any(budget * base <= s < budget * base + base / 2 for s in steps), (budget, base, steps)
    reference = [r for r in result.rows if r["own"] and r["n_structures"] == scenario.reference_size]
    assert len(reference) == 1
    written = list(csv.DictReader(open(result.root / "curves.csv")))
    assert len(written) == len(result.rows)
    summary = json.loads((result.root / "summary.json").read_text())
    assert summary["generation_0"]["rmse_forces_id"] == pytest.approx(gen0["rmse_forces_id"], rel=1e-9)
    assert (result.root / "curves.png").stat().st_size > 10_000
    assert "generation 0:" in result.table() and "from it" in result.table()


def _row(n, steps, error, own=0):
    return {"seed": 0, "n_structures": n, "own": own, "steps": steps, "budget": steps / 100,
            "rmse_forces_id": error, **{c: 1.0 for c in ("rmse_forces_ood", "rmse_energy_id",
                                                          "rmse_energy_id_composition", "rmse_energy_ood_composition")}}


@pytest.mark.parametrize("more_steps, converged", [(95.0, True), (85.0, False)])
def test_the_verdict_is_ten_percent_of_the_plateau(more_steps, converged):
    from collapse_sim.scenario import parse_scenario

    scenario = parse_scenario(tiny_scenario_dict())
    n0 = scenario.real_data.n_structures
    rows = [_row(n0, 100, 100.0, own=1), _row(n0, 200, more_steps), _row(n0, 400, more_steps + 1),
            _row(2 * n0, 400, 50.0), _row(scenario.reference_size, 200, 60.0, own=1)]
    summary = summarise(rows, scenario)
    assert summary["converged"] is converged
    assert summary["plateau_rmse_forces_id"] == more_steps
    assert summary["best"] == {"n_structures": 2 * n0, "steps": 400, "rmse_forces_id": 50.0}


@pytest.mark.parametrize("argv, expected", [
    (["--budgets", "1,-2"], "--budgets: give positive numbers"),
    (["--seeds", "9"], "--seeds 9: the scenario has"),
])
def test_bad_options_name_the_option_and_write_nothing(tmp_path, capsys, argv, expected):
    path = tmp_path / "s.yaml"
    import yaml

    path.write_text(yaml.safe_dump(tiny_scenario_dict()))
    assert main(["converge", str(path), "--out", str(tmp_path / "out"), "--local", *argv]) == 2
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_without_optimiser_steps_is_refused(tmp_path):
    data = tiny_scenario_dict()
    data["model"] = {"kind": "frozen", "calculator": "ase.calculators.emt.EMT"}
    with pytest.raises(collapse_sim.UsageError, match="converge needs a trainable model with optimiser steps"):
        collapse_sim.converge(data, tmp_path, local=True)


def test_with_a_teacher_each_point_is_measured_against_its_labels_and_embeddings(tiny_run, tmp_path):
    """The run's own generation 0 as the teacher: the ladder's own point is that model, so it reads
    0 error against the teacher and CKNNA 1; a shorter training reads less."""
    from collapse_sim.store import RunStore

    scenario, root, run_rows = tiny_run
    lineage = next(r["lineage"] for r in run_rows if r["generation"] == 0)
    data = tiny_scenario_dict()
    data["teacher"] = {"kind": "frozen", "model": data["model"], "path": str(RunStore(root).model_path(lineage, 0))}
    result = collapse_sim.converge(data, tmp_path, budgets=[0.25], sizes=[1.0], seeds=1, local=True)
    n0 = scenario.real_data.n_structures
    (own,) = [r for r in result.rows if r["own"] and r["n_structures"] == n0]
    (short,) = [r for r in result.rows if not r["own"]]
    for probe in ("id", "ood"):
        assert own[f"rmse_forces_{probe}_teacher"] == pytest.approx(0.0, abs=1e-3)
        assert own[f"cknna_teacher_{probe}"] == pytest.approx(1.0, abs=1e-9)
        assert short[f"rmse_forces_{probe}_teacher"] > 1.0 and short[f"cknna_teacher_{probe}"] < 1.0
    assert {"cknna_teacher_id", "rmse_forces_id_teacher"} <= set(next(csv.DictReader(open(result.root / "curves.csv"))))
