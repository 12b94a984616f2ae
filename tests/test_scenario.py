from pathlib import Path

import pytest
from scenario_factory import quickstart_dict

from collapse_sim.scenario import ScenarioError, load_scenario, parse_scenario


def test_quickstart_parses_with_defaults_resolved():
    scenario = parse_scenario(quickstart_dict())
    assert scenario.name == "quickstart"
    assert [p.label for p in scenario.policies] == ["replace", "accumulate", "fresh-real"]
    assert scenario.model.dtype == "float32"
    assert "valid_fraction" in scenario.resolved_yaml()


def _broken(mutate):
    data = quickstart_dict()
    mutate(data)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "s.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["model"].update(hiden_irreps="8x0e"), "model.hiden_irreps"),
        (lambda d: d["real_data"].update(n_structures=-3), "real_data.n_structures"),
        (lambda d: d["policies"].append({"kind": "fresh-real", "real_fraction": 1.5, "name": "x"}), "real_fraction"),
        (lambda d: d["policies"].append({"kind": "forget"}), "policies.3"),
        (lambda d: d["oracle"].update(calculator="ase.calculators.nope.Nope"), "oracle.calculator"),
        (lambda d: d["model"].update(hidden_irreps="sixteen"), "model.hidden_irreps"),
        (lambda d: d["policies"].append({"kind": "replace"}), "duplicate lineage names"),
        (lambda d: d["synthetic"]["sampler"].update(kind="teleport"), "synthetic.sampler"),
        (lambda d: d.update(seeds=[1, 1]), "seeds"),
        (lambda d: d["probes"]["ood"].update(n_structures=39),
         "probes.ood.n_structures: 39 is too few for metrics.k=10 (need >= 4 k"),
        (lambda d: d.update(ray={"gpus_per_training": 1}),
         "ray.gpus_per_training: GPUs are reserved but model.device is 'cpu'"),
    ],
)
def test_bad_scenarios_name_the_field(mutate, expected):
    assert expected in _broken(mutate)


def test_top_level_must_be_mapping():
    with pytest.raises(ScenarioError, match="mapping"):
        parse_scenario(["not", "a", "mapping"])


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_scenarios_are_valid(path):
    if "chgnet" in path.read_text():  # a teacher scenario: the optional extra `teacher`
        pytest.importorskip("chgnet")
    assert load_scenario(path).name == path.stem
