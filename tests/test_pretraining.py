"""Synthetic pre-training: a MACE fit can start from saved weights (``model.init``), and
``collapse-sim pretrain`` compares pre-trained-then-fine-tuned students with students trained on
the truth alone, paired by seed."""
import csv
import json

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT
from scenario_factory import TINY_MACE, tiny_scenario_dict

from collapse_sim import api, models
from collapse_sim.cli import main
from collapse_sim.data.structures import attach_labels, energy_of, forces_of
from collapse_sim.models import parse_settings
from collapse_sim.runtime.torch_state import state_dict_fingerprint

TEACHER = {"calculator": "ase.calculators.emt.EMT", "kwargs": {"asap_cutoff": True}, "chunk_size": 6}
TRUTH = {"calculator": "ase.calculators.emt.EMT", "chunk_size": 6}


def _cells(n, seed, shift=0.0):
    rng, out = np.random.default_rng(seed), []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.61, cubic=True)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 30)))
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy() + shift * len(atoms), atoms.get_forces(), None))
    return out


def test_a_fit_from_saved_weights_keeps_them_and_fits_the_e0s_anew(tmp_path, one_torch_thread):
    first = models.make(parse_settings({"kind": "mace", **TINY_MACE}), threads=1).fit(_cells(12, 0), seed=0)
    path = tmp_path / "pre.model"
    first.save(path)
    # a learning rate too small to move the weights: only the E0s (fitted, not trained) change
    settings = parse_settings({"kind": "mace", **TINY_MACE, "init": str(path), "lr": 1e-12, "steps": 2})
    shifted = _cells(12, 1, shift=-1.0)  # another energy zero: 1 eV per atom lower
    tuned = models.make(settings, threads=1).fit(shifted, seed=0)
    assert tuned.fit_info["init_hash"] == first.fingerprint()
    assert tuned.fit_info["E0s"]["Cu"] == pytest.approx(first.fit_info["E0s"]["Cu"] - 1.0, abs=0.05)
    skip = "atomic_energies_fn.atomic_energies"
    a, b = first.model.state_dict(), tuned.model.state_dict()
    assert all(torch_equal(a[k], b[k]) for k in a if k != skip)
    probe = _cells(3, 5)
    for x, y in zip(first.predict(probe), tuned.predict(probe)):  # same forces, energies shifted by the E0s
        assert np.allclose(forces_of(x), forces_of(y), atol=1e-5)
        shift = len(x) * (tuned.fit_info["E0s"]["Cu"] - first.fit_info["E0s"]["Cu"])
        assert energy_of(y) - energy_of(x) == pytest.approx(shift, abs=1e-4)
    assert state_dict_fingerprint(first.model) == first.fingerprint()


def _with_silver(cells):
    out = []
    for atoms in cells:
        atoms = atoms.copy()
        atoms.numbers[:2] = 47
        atoms.calc = EMT()
        out.append(attach_labels(atoms, atoms.get_potential_energy(), atoms.get_forces(), None))
    return out


def test_a_fine_tuning_keeps_the_e0s_of_elements_its_set_lacks_or_all_with_e0s_init(tmp_path, one_torch_thread):
    first = models.make(parse_settings({"kind": "mace", **TINY_MACE}), threads=1).fit(_with_silver(_cells(12, 0)),
                                                                                        seed=0)
    path = tmp_path / "pre.model"
    first.save(path)
    e0 = first.fit_info["E0s"]
    assert e0["Ag"] != 0.0
    copper_only = _cells(12, 1, shift=-1.0)  # the fine-tuning set lost silver, and has another energy zero
    base = {"kind": "mace", **TINY_MACE, "init": str(path), "lr": 1e-12, "steps": 2}
    refit = models.make(parse_settings(base), threads=1).fit(copper_only, seed=0, species=["Cu", "Ag"])
    assert refit.fit_info["E0s"]["Ag"] == pytest.approx(e0["Ag"])  # least squares would say 0
    assert refit.fit_info["E0s"]["Cu"] != pytest.approx(e0["Cu"], abs=0.5)  # fitted anew
    kept = models.make(parse_settings(base | {"E0s": "init"}), threads=1).fit(copper_only, seed=0,
                                                                             species=["Cu", "Ag"])
    assert kept.fit_info["E0s"] == pytest.approx(e0)
    with pytest.raises(ValueError, match="E0s: 'init' keeps the E0s of the model file in `init`"):
        parse_settings({"kind": "mace", "E0s": "init"})


def torch_equal(x, y) -> bool:
    return bool((x == y).all())


def test_init_must_be_a_file_and_a_mace_model(tmp_path):
    with pytest.raises(ValueError, match="init: .* is not a file"):
        parse_settings({"kind": "mace", "init": str(tmp_path / "missing.model")})
    bogus = tmp_path / "bogus.model"
    import torch

    torch.save({"not": "a model"}, bogus)
    settings = parse_settings({"kind": "mace", **TINY_MACE, "init": str(bogus)})
    with pytest.raises(ValueError, match="model.init: .* does not hold a MACE model"):
        models.make(settings, threads=1).fit(_cells(4, 0), seed=0)


def _pretrain_scenario(**extra):
    return tiny_scenario_dict(oracle=TEACHER, reference_oracle=TRUTH, model={"kind": "mace", **TINY_MACE, "steps": 4},
                              **extra)


MESSAGES: list[str] = []


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    return api.pretrain(_pretrain_scenario(), tmp_path_factory.mktemp("pre"), sizes=[4, 8], synthetic=8,
                        pretrain_budget=2.0, local=True, progress=MESSAGES.append)


def test_pretrain_trains_every_arm_on_the_same_seeds_and_sizes(result):
    rows = result.rows
    assert sorted((r["arm"], r["n_real"]) for r in rows) == [
        ("pretrain", 0), ("pretrained", 4), ("pretrained", 8), ("scratch", 4), ("scratch", 8),
        ("scratch-equal", 4), ("scratch-equal", 8)]
    steps = {r["arm"]: r["steps"] for r in rows}
    assert steps == {"pretrain": 8, "pretrained": 4, "scratch": 4, "scratch-equal": 12}  # 8 + 4: the control
    assert all(entry["steps"] == {arm: steps[arm] for arm in ("pretrained", "scratch", "scratch-equal")}
               for entry in result.summary["sizes"])
    by = {(r["arm"], r["n_real"]): r for r in rows}
    for entry in result.summary["sizes"]:  # each reduction is 1 - pretrained / control of the rows
        n = entry["n_real"]
        assert set(entry["id"]) == {"scratch", "scratch-equal"}
        for control, e in entry["id"].items():
            pretrained, base = by["pretrained", n]["rmse_forces_id"], by[control, n]["rmse_forces_id"]
            assert (e["control"], e["pretrained"]) == (pytest.approx(base), pytest.approx(pretrained))
            assert e["reduction"] == pytest.approx(1 - pretrained / base)
            assert e["verdict"] == "preliminary" and e["seeds"] == 1
        assert by["pretrained", n]["rmse_forces_id"] != by["scratch", n]["rmse_forces_id"]
        assert by["scratch-equal", n]["rmse_forces_id"] != by["scratch", n]["rmse_forces_id"]
    with open(result.root / "rows.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows)
    assert json.loads((result.root / "summary.json").read_text())["synthetic"] == 8
    assert (result.root / "pretraining.png").stat().st_size > 0
    assert (result.root / "pretrained" / "seed-0.model").is_file()
    from collapse_sim.data.io import read_structures

    assert len(read_structures(result.root / "data" / "seed-0-teacher.extxyz")) == 8
    truth = read_structures(result.root / "data" / "seed-0-truth.extxyz")
    assert len(truth) == 8 and all(a.info["producer"] == "ase.calculators.emt.EMT" for a in truth)
    assert "reduction" in result.table() and "scratch-equal (12)" in result.table()
    assert MESSAGES == ["seed 0: labelling 8 structures with the teacher, 8 with the truth",
                        "pre-training 1 model(s) for 8 steps",
                        "training 6 students (scratch, scratch at equal steps and pre-trained, 2 sizes)"]


@pytest.mark.parametrize(("change", "args", "message"), [
    ({"reference_oracle": None}, [], "pretrain needs reference_oracle"),
    ({"model": {"kind": "mace", **TINY_MACE}}, [], "model.steps set"),
    ({}, ["--sizes", "1,4"], "--sizes: give integers of at least 2"),
    ({}, ["--pretrain-budget", "0"], "--pretrain-budget: give a positive number"),
])
def test_bad_pretrain_input_is_one_line_and_writes_nothing(tmp_path, capsys, change, args, message):
    import yaml

    data = _pretrain_scenario()
    data.update(change)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    out = tmp_path / "out"
    assert main(["pretrain", str(path), "--out", str(out), "--local", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
