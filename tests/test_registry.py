"""A kind registered at run time is a kind like any other: one register call, and a scenario
that names it validates (errors naming the field) and runs end to end."""
from __future__ import annotations

from typing import Literal

import pytest
import yaml
from conftest import run_scenario
from scenario_factory import ROOT

from collapse_sim import policies
from collapse_sim.policies.base import Policy, PolicySettingsBase, Selection
from collapse_sim.scenario import ScenarioError, parse_scenario


class KeepHalfSettings(PolicySettingsBase):
    """Train on half of the newest synthetic pool."""

    kind: Literal["keep-half"]


class KeepHalf(Policy):
    def select(self, history, offered, request, rng):
        return Selection([offered.synthetic.sample(len(offered.synthetic) // 2, rng)])


@pytest.fixture
def keep_half():
    policies.KINDS.register(KeepHalfSettings, KeepHalf)
    yield
    policies.KINDS.unregister("keep-half")


def _scenario_dict(**policy) -> dict:
    """The Gaussian refitting scenario shrunk to a second: one seed, two refits."""
    data = yaml.safe_load((ROOT / "scenarios" / "theory-gaussian.yaml").read_text())
    data.update(name="keep-half", seeds=[0], generations=2,
                policies=[{"kind": "keep-half", **policy}, {"kind": "replace"}])
    return data


def test_registered_kind_validates_and_runs_end_to_end(keep_half, tmp_path):
    scenario = parse_scenario(_scenario_dict())
    assert isinstance(scenario.policies[0], KeepHalfSettings) and scenario.policies[0].label == "keep-half"
    root, rows = run_scenario(tmp_path, scenario)
    by = {(r["lineage"], r["generation"]): r for r in rows}
    n = scenario.synthetic.n_structures
    for g in (1, 2):
        assert by["keep-half-s0", g]["policy_kind"] == "keep-half"
        assert by["keep-half-s0", g]["n_train"] == n // 2 and by["replace-s0", g]["n_train"] == n


def test_registered_kind_errors_name_the_field(keep_half):
    with pytest.raises(ScenarioError, match=r"policies\.0\.colour: Extra inputs are not permitted"):
        parse_scenario(_scenario_dict(colour="red"))


def test_unregistered_kind_is_refused():
    with pytest.raises(ScenarioError, match=r"policies\.0: Input tag 'keep-half' found using 'kind' does not match"):
        parse_scenario(_scenario_dict())
    with pytest.raises(KeyError, match="unknown policy kind 'keep-half'"):
        policies.make(KeepHalfSettings(kind="keep-half"))


def test_a_kind_registers_once_and_names_itself_with_a_literal():
    with pytest.raises(ValueError, match="already registered"):
        policies.KINDS.register(policies.replace.ReplaceSettings, KeepHalf)
    with pytest.raises(TypeError, match="Literal"):
        policies.KINDS.register(PolicySettingsBase, KeepHalf)
