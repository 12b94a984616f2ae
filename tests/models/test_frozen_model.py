"""The frozen kind: an ASE calculator or another kind's saved (or published) model used as it
is, never trained; saved as a small JSON that rebuilds it and checks its fingerprint."""
from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from pydantic import ValidationError

from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models import load, make, parse_settings
from collapse_sim.models.base import FEATURES, FROZEN, capabilities

EMT_FROZEN = {"kind": "frozen", "calculator": "ase.calculators.emt.EMT"}


def _cells(n: int = 3):
    out = []
    for seed in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=seed)
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    return out


def test_a_calculator_labels_as_the_calculator_and_fit_trains_nothing(tmp_path):
    cells = _cells()
    model = make(parse_settings(EMT_FROZEN))
    assert capabilities(model) == {FROZEN}
    before = model.fingerprint()
    assert model.fit(cells, seed=0, log_path=tmp_path / "train_log.jsonl") is model
    assert json.loads((tmp_path / "train_log.jsonl").read_text())["frozen"] is True
    assert model.fingerprint() == before
    for ours, truth in zip(model.predict(cells), cells):
        assert ours.get_potential_energy() == pytest.approx(truth.get_potential_energy(), abs=1e-12)
        np.testing.assert_allclose(ours.get_forces(), truth.get_forces(), atol=1e-12)
        np.testing.assert_allclose(ours.get_stress(), truth.get_stress(), atol=1e-12)
    assert isinstance(model.calculator(), EMT)
    with pytest.raises(NotImplementedError, match="no per-structure features"):
        model.embed(cells)


def test_save_writes_a_small_json_that_rebuilds_the_same_model(tmp_path):
    model = make(parse_settings(dict(EMT_FROZEN, kwargs={"fixed_cutoff": True})))
    model.save(tmp_path / "m.json")
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved["settings"]["calculator"] == "ase.calculators.emt.EMT" and (tmp_path / "m.json").stat().st_size < 2000
    loaded = load(parse_settings(EMT_FROZEN), tmp_path / "m.json")
    assert loaded.fingerprint() == model.fingerprint() != make(parse_settings(EMT_FROZEN)).fingerprint()
    saved["fingerprint"] = "sha256:0000000000000000"
    (tmp_path / "m.json").write_text(json.dumps(saved))
    with pytest.raises(ValueError, match="not the saved"):
        load(parse_settings(EMT_FROZEN), tmp_path / "m.json")


def test_a_saved_model_of_another_kind_is_wrapped_with_its_features(tmp_path):
    cells = _cells(6)
    linear = make(parse_settings({"kind": "linear"})).fit(cells, seed=0)
    linear.save(tmp_path / "linear.json")
    path = str(tmp_path / "linear.json")
    frozen = make(parse_settings({"kind": "frozen", "model": {"kind": "linear"}, "path": path}))
    assert frozen.fingerprint() == linear.fingerprint()
    assert capabilities(frozen) == {FROZEN} | (capabilities(linear) & {FEATURES})
    assert frozen.fit(cells[:2], seed=1).fingerprint() == linear.fingerprint()
    np.testing.assert_array_equal(frozen.predict(cells)[0].get_forces(), linear.predict(cells)[0].get_forces())


@pytest.mark.parametrize("settings, expected", [
    ({"kind": "frozen"}, "give calculator"),
    (dict(EMT_FROZEN, model={"kind": "linear"}), "not both"),
    ({"kind": "frozen", "calculator": "ase.calculators.nope.Nope"}, "cannot import"),
    ({"kind": "frozen", "model": {"kind": "linear"}}, "path: a frozen linear needs the file of a saved model"),
    ({"kind": "frozen", "model": {"kind": "linear"}, "path": "/no/such/file"}, "is not a file"),
    ({"kind": "frozen", "model": EMT_FROZEN}, "not a frozen one"),
    ({"kind": "frozen", "model": {"kind": "chgnet"}, "environment": ["sevenn"]}, "only a calculator runs"),
])
def test_bad_settings_name_the_field(settings, expected):
    with pytest.raises(ValidationError, match=expected):
        parse_settings(settings)


def test_a_calculator_in_its_own_process_labels_as_in_this_one(tmp_path):
    """The calculator served by a worker process (here this interpreter; in practice an environment
    of its own, e.g. SevenNet-0's) gives the same labels, and its fingerprint survives save/load."""
    import sys

    cells = _cells(3)
    here = make(parse_settings(EMT_FROZEN))
    elsewhere = make(parse_settings(dict(EMT_FROZEN, python=sys.executable)))
    for a, b in zip(here.predict(cells), elsewhere.predict(cells)):
        assert energy_of(a) == energy_of(b)
        np.testing.assert_array_equal(forces_of(a), forces_of(b))
    elsewhere.save(tmp_path / "model.json")
    assert load(elsewhere.settings, tmp_path / "model.json").fingerprint() == elsewhere.fingerprint()


def test_a_published_chgnet_is_a_frozen_teacher(tmp_path):
    pytest.importorskip("chgnet")
    cells = _cells(2)
    frozen = make(parse_settings({"kind": "frozen", "model": {"kind": "chgnet"}}), threads=1)
    assert capabilities(frozen) == {FROZEN, FEATURES}
    assert frozen.embed(cells).shape == (2, 64)
    frozen.save(tmp_path / "teacher.json")
    assert load(frozen.settings, tmp_path / "teacher.json", threads=1).fingerprint() == frozen.fingerprint()


def _lineage(**overrides) -> dict:
    from scenario_factory import tiny_scenario_dict

    return tiny_scenario_dict(**{"name": "frozen", "generations": 1, "policies": [{"kind": "replace"}],
                                 "model": EMT_FROZEN, "probes": None, "metrics": {"enabled": False}, **overrides})


def test_a_frozen_lineage_keeps_one_model_through_its_generations(tmp_path):
    import collapse_sim

    run = collapse_sim.run(_lineage(), tmp_path, local=True, progress=False)
    assert [r["generation"] for r in run.rows] == [0, 1]
    assert run.rows[0]["model_hash"] == run.rows[1]["model_hash"] == make(parse_settings(EMT_FROZEN)).fingerprint()


def test_a_frozen_calculator_is_measured_without_alignment_columns(tmp_path):
    """A model without features still gets its accuracy measured; the row says why no alignment."""
    import collapse_sim

    run = collapse_sim.run(_lineage(probes=tiny_scenario_probes(), metrics={"k": 2}), tmp_path, local=True,
                           progress=False)
    for row in run.rows:
        assert row["rmse_forces_id"] < 1e-3  # meV/Å: EMT against the EMT oracle, up to the files' rounding
        assert not any(key.startswith("cknna_") for key in row)
        assert any("no features capability" in w for w in row["metric_warnings"])


def tiny_scenario_probes() -> dict:
    from scenario_factory import tiny_scenario_dict

    return tiny_scenario_dict()["probes"]


def test_a_calculator_elsewhere_is_checked_before_the_run(tmp_path):
    """A frozen calculator in another process that cannot be built fails at validation, in one
    line naming the model, before anything is written."""
    import sys

    import collapse_sim

    data = _lineage(model={"kind": "frozen", "calculator": "no_such_package.Calculator", "python": sys.executable})
    with pytest.raises(collapse_sim.UsageError, match="model: ") as err:
        collapse_sim.run(data, tmp_path, local=True, progress=False)
    assert "\n" not in str(err.value)
    assert not any(tmp_path.iterdir())
