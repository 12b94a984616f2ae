"""The model zoo: every saved model of finished runs on their shared probe sets, the paper's
alignment-against-accuracy and OOD-collapse numbers with lineage-bootstrap intervals, and the
refusals that keep a zoo honest (different probe sets, too few probes for k, an existing --out)."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr

from collapse_sim import api
from collapse_sim.cli import main
from collapse_sim.errors import UsageError
from collapse_sim.metrics.alignment import cknna
from collapse_sim.zoo import _mean_off_diagonal, cluster_bootstrap


@pytest.fixture(scope="module")
def zoo(tiny_run, tmp_path_factory):
    _, root, rows = tiny_run
    return api.zoo([root], tmp_path_factory.mktemp("zoo") / "out", bootstrap=200), root, rows


def test_every_model_once_with_its_numbers(zoo):
    result, root, rows = zoo
    names = [m.name for m in result.models]
    # the reference model, the shared generation 0 once, then each lineage's later generations
    assert names[0] == "tiny/reference"
    assert len(names) == len(set(names)) == 1 + len({r["model_hash"] for r in rows})
    assert sum(m.generation == 0 for m in result.models) == 1
    written = list(csv.DictReader((result.root / "models.csv").open()))
    assert [w["name"] for w in written] == names
    mats = np.load(result.root / "matrices.npz")
    for probe in ("id", "ood"):
        C = mats[f"cknna_{probe}"]
        assert np.allclose(C, C.T) and np.allclose(np.diag(C), 1.0)
        assert mats[f"ii_{probe}"].shape == C.shape and mats[f"twonn_{probe}"].shape == (len(names),)
    # the column a reader plots equals CKNNA computed directly on the saved embeddings
    best = names.index(result.summary["best"])
    errors = [m.errors["id"] for m in result.models]
    assert best == int(np.argmin(errors))
    Z = [np.load(m.embeddings["id"]) for m in result.models]
    assert float(written[3]["cknna_to_best_id"]) == pytest.approx(cknna(Z[best], Z[3], k=2), abs=1e-12)
    others = [i for i in range(len(names)) if i != best]
    rho = result.summary["alignment_vs_accuracy"]["id"]["spearman_cknna_to_best_vs_force_rmse"]
    assert rho["value"] == pytest.approx(spearmanr(mats["cknna_id"][best, others],
                                                   np.asarray(errors)[others]).statistic)
    assert rho["clusters"] == result.summary["clusters"] == len({m.cluster for m in result.models})
    saved = json.loads((result.root / "summary.json").read_text())
    assert saved["k"] == 2 and saved["models"] == len(names)
    assert (result.root / "zoo.png").stat().st_size > 0
    assert "Spearman(CKNNA to the most accurate, force RMSE)" in result.table()
    # on every probe (8 = 4 k), the probe-count check is the whole-set mean pairwise CKNNA again
    (full,) = result.summary["by_probe_count"]
    assert full["probes"] == 8 and full["models"] == len(names)
    for probe in ("id", "ood"):
        assert full[f"mean_pairwise_cknna_{probe}"] == pytest.approx(
            result.summary["ood_collapse"]["mean_pairwise_cknna"][probe], abs=1e-9)


def test_refuses_what_would_not_compare(zoo, tmp_path):
    result, root, _ = zoo
    with pytest.raises(UsageError, match="already exists"):
        api.zoo([root], result.root)
    with pytest.raises(UsageError, match="at least 4 k probe structures"):
        api.zoo([root], tmp_path / "k", k=3)
    with pytest.raises(UsageError, match="given twice"):
        api.zoo([root, root], tmp_path / "twice")
    with pytest.raises(UsageError, match="a zoo needs at least 4"):
        api.zoo([root], tmp_path / "few", generations=[7])
    other = tmp_path / "other" / "tiny"
    shutil.copytree(root, other)
    probe = other / "probes" / "ood.extxyz"
    probe.write_text(probe.read_text() + "\n")  # one byte more: another probe set
    with pytest.raises(UsageError, match="probe sets differ"):
        api.zoo([root, other], tmp_path / "mixed")
    assert not any((tmp_path / name).exists() for name in ("mixed", "k", "twice", "few"))


def test_cli_bad_input_is_one_line_and_exit_2(zoo, tmp_path, capsys):
    _, root, _ = zoo
    assert main(["zoo", str(root), "--out", str(tmp_path / "z"), "--k", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--k 3" in err[0]
    assert not (tmp_path / "z").exists()


def test_bootstrap_resamples_whole_lineages():
    values = np.array([0.0, 0.0, 1.0, 1.0])
    clusters = ["a", "a", "b", "b"]
    out = cluster_bootstrap(lambda idx: float(values[idx].mean()), clusters, 400, seed=1)
    assert out["value"] == 0.5 and out["clusters"] == 2 and out["models"] == 4
    # whole clusters drawn: every resample's mean is 0, 0.5 or 1, never 0.25 or 0.75
    assert out["low"] == 0.0 and out["high"] == 1.0
    same = cluster_bootstrap(lambda idx: float(values[idx].mean()), ["a", "b", "c", "d"], 400, seed=1)
    assert same["clusters"] == 4


def test_pairs_of_a_resampled_model_with_itself_are_left_out():
    A = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert _mean_off_diagonal(A, np.array([0, 1, 2])) == pytest.approx(0.4)
    assert _mean_off_diagonal(A, np.array([0, 0, 1])) == pytest.approx(0.2)
    assert np.isnan(_mean_off_diagonal(A, np.array([2, 2])))


def test_each_architecture_gets_its_own_ladder():
    """With two architectures the most accurate model may be of either: each architecture's models
    are also ranked against their own most accurate one."""
    from pathlib import Path

    from collapse_sim.zoo import ZooModel, analyse

    rng = np.random.default_rng(0)
    models = [ZooModel(f"m{i}", f"lineage{i // 2}", "run", "p", i, 0, {"id": float(e), "ood": float(e) + 1},
                       {"id": Path("-"), "ood": Path("-")}, "mace" if i < 10 else "ani")
              for i, e in enumerate(rng.uniform(1, 10, size=20))]
    A = rng.uniform(0.5, 1.0, size=(20, 20))
    mats = {p: {"cknna": (A + A.T) / 2, "twonn": rng.uniform(1, 3, size=20)} for p in ("id", "ood")}
    summary = analyse(models, mats, n_boot=100)
    assert set(summary["by_architecture"]) == {"mace", "ani"}
    mace = summary["by_architecture"]["mace"]
    errors = np.array([m.errors["id"] for m in models[:10]])
    own = int(np.argmin(errors))
    others = [i for i in range(10) if i != own]
    assert mace["best"] == f"m{own}" and mace["models"] == 10
    assert mace["id"]["value"] == pytest.approx(spearmanr(mats["id"]["cknna"][own, others], errors[others]).statistic)
    assert "by_architecture" not in analyse(models[:10], {p: {"cknna": m["cknna"][:10, :10], "twonn": m["twonn"][:10]}
                                                          for p, m in mats.items()}, n_boot=100)


LADDER = {"sets": [
    {"name": "hot", "n_structures": 8, "recipes": [{"method": "md", "temperature_K": 1500, "md_steps": 4,
                                                    "rattle_stdev": 0.05}]},
    {"name": "bcc", "n_structures": 8, "recipes": [{"method": "rattle", "rattle_stdev": 0.05}],
     "system": {"kind": "bulk", "element": "Cu", "crystal": "bcc", "lattice_constant": 2.87, "cubic": True,
                "supercell": [2, 2, 2]}}]}


def test_a_ladder_measures_sampled_models_on_probe_sets_further_out(tiny_run, tmp_path):
    import yaml
    from ase.calculators.emt import EMT

    from collapse_sim import models as kinds
    from collapse_sim.data.io import read_structures
    from collapse_sim.data.structures import energy_of
    from collapse_sim.measure.accuracy import label_rmse
    from collapse_sim.metrics.ecosystem import alignment_matrix
    from collapse_sim.models import parse_settings
    from collapse_sim.zoo_ladder import sample

    _, root, _ = tiny_run
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(LADDER))
    result = api.zoo([root], tmp_path / "out", bootstrap=200, ladder=path, ladder_models=5)
    ladder = {e["probe_set"]: e for e in result.summary["ood_ladder"]}
    assert list(ladder) == ["id", "ood", "hot", "bcc"]
    chosen = [result.models[i] for i in sample(len(result.models), 5, 0)]
    assert all(e["models"] == 5 for e in ladder.values()) and "cknna_minus_id" not in ladder["id"]
    settings = parse_settings(yaml.safe_load((root / "scenario.yaml").read_text())["model"])
    for name in ("hot", "bcc"):  # the rung's structures carry the oracle's (EMT's) labels
        rung = read_structures(result.root / "ladder" / f"{name}.extxyz")
        atoms = rung[0].copy()
        atoms.calc = EMT()
        assert energy_of(rung[0]) == pytest.approx(atoms.get_potential_energy(), abs=1e-6)
        loaded = [kinds.load(settings, m.model) for m in chosen]  # errors and CKNNA equal a direct computation
        errors = [label_rmse(model.predict(rung), rung)[1] for model in loaded]
        assert ladder[name]["mean_force_rmse"] == pytest.approx(np.mean(errors), rel=1e-6)  # extxyz round trip
        C = alignment_matrix([model.embed(rung) for model in loaded], k=2)
        assert ladder[name]["mean_pairwise_cknna"] == pytest.approx(_mean_off_diagonal(C, np.arange(5)), abs=1e-6)
    saved = alignment_matrix([np.load(m.embeddings["id"]) for m in chosen], k=2)  # the ID rung: saved embeddings
    assert ladder["id"]["mean_pairwise_cknna"] == pytest.approx(_mean_off_diagonal(saved, np.arange(5)), abs=1e-12)
    assert "ladder bcc" in result.table()


@pytest.mark.parametrize(("change", "message"), [
    ({"sets": [{"name": "ag", "n_structures": 8, "system": {"kind": "bulk", "element": "Ag", "crystal": "fcc",
                                                             "lattice_constant": 4.09}}]},
     r"--ladder: sets\[0\].system: Ag not in the runs' system"),
    ({"sets": [{"name": "few", "n_structures": 4}]}, r"sets\[0\].n_structures: CKNNA with k = 2 needs at least 8"),
    ({"sets": [{"name": "id", "n_structures": 8}]}, r"names must be distinct and not id, ood"),
    ({"sets": [{"name": "x", "n_structures": 8, "colour": "red"}]}, r"colour"),
    ({"sets": [{"name": "hot/1500K", "n_structures": 8}]}, r"sets.0.name"),
])
def test_a_bad_ladder_is_one_line_and_writes_nothing(tiny_run, tmp_path, change, message):
    import yaml

    _, root, _ = tiny_run
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(change))
    with pytest.raises(UsageError, match=message):
        api.zoo([root], tmp_path / "out", ladder=path)
    assert not (tmp_path / "out").exists()


def test_a_ladder_that_fails_midway_leaves_nothing_behind(tiny_run, tmp_path, monkeypatch):
    import yaml

    import collapse_sim.zoo_ladder as zoo_ladder

    def broken(*args, **kwargs):
        raise RuntimeError("a model failed to load")

    monkeypatch.setattr(zoo_ladder, "measure_rungs", broken)
    _, root, _ = tiny_run
    path = tmp_path / "ladder.yaml"
    path.write_text(yaml.safe_dump(LADDER))
    with pytest.raises(RuntimeError, match="failed to load"):
        api.zoo([root], tmp_path / "out", bootstrap=100, ladder=path, ladder_models=4)
    assert not (tmp_path / "out").exists()  # the same --out can be used again
