"""``model.continual``: each model-fed generation starts from its predecessor's weights (continual
fine-tuning), recorded as the row's ``init_hash``; generation 0 is the same as without it, and kinds
that cannot start from saved weights are refused when the scenario is read."""
import pytest
from scenario_factory import tiny_scenario_dict

import collapse_sim
from collapse_sim.scenario import ScenarioError, parse_scenario


def _rows(tmp_path, continual: bool, **model):
    data = tiny_scenario_dict(name=f"continual-{continual}", policies=[{"kind": "replace"}], probes=None,
                              metrics={"enabled": False})
    data["model"].update(continual=continual, **model)
    return {r["generation"]: r for r in collapse_sim.run(data, tmp_path, local=True, progress=False).rows}


def test_each_generation_starts_from_its_predecessor(tmp_path):
    continual, fresh = _rows(tmp_path, True), _rows(tmp_path, False)
    assert sorted(continual) == [0, 1, 2]
    assert continual[0]["model_hash"] == fresh[0]["model_hash"]  # generation 0 trains as before
    assert "init_hash" not in continual[0]
    for g in (1, 2):
        assert continual[g]["init_hash"] == continual[g - 1]["model_hash"]
    assert not any("init_hash" in row for row in fresh.values())  # each from random weights
    assert continual[1]["model_hash"] != fresh[1]["model_hash"]


@pytest.mark.parametrize("kind", ["ani", "linear"])
def test_kinds_that_cannot_start_from_saved_weights_are_refused(kind):
    with pytest.raises(ScenarioError, match=r"model.continual: Extra inputs are not permitted"):  # not their setting
        parse_scenario(tiny_scenario_dict(model={"kind": kind, "continual": True}))


def test_continual_steps_set_the_fine_tunings_length_not_generation_0s(tmp_path):
    rows = _rows(tmp_path, True, steps=6, continual_steps=2)
    assert [rows[g]["train_steps"] for g in (0, 1, 2)] == [6, 2, 2]  # batches of 4: whole passes, at least the steps
    assert rows[2]["init_hash"] == rows[1]["model_hash"]


def test_a_continual_mace_keeps_its_predecessors_e0s(tmp_path):
    from collapse_sim.models.mace import MACESettings

    settings = MACESettings(continual=True, continual_steps=5)
    model = tmp_path / "gen-0.model"
    model.write_bytes(b"")
    after = settings.continued_from(str(model))
    assert (after.init, after.E0s, after.steps) == (str(model), "init", 5)


def test_continual_steps_without_continual_are_refused():
    with pytest.raises(ScenarioError, match=r"model: continual_steps: set only with continual: true"):
        parse_scenario(tiny_scenario_dict(model={"kind": "mace", "continual_steps": 100}))
