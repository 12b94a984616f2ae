"""End to end: the tiny scenario under a real local Ray, then the run-directory contract."""
import json
import shutil

import numpy as np
import pytest

from collapse_sim.data.io import read_structures
from collapse_sim.loop import RunContext, reproducible_fields, run
from collapse_sim.runtime.executor import LocalExecutor

LINEAGES = ["replace-s0", "accumulate-s0", "fresh-real-s0"]


def test_layout_and_metrics_rows(tiny_run):
    scenario, root, rows = tiny_run
    assert (root / "probes" / "id.extxyz").exists() and (root / "probes" / "ood.extxyz").exists()
    assert len(rows) == len(LINEAGES) * (scenario.generations + 1)
    lines = (root / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows
    required = {"policy", "seed", "generation", "n_train", "n_real", "n_synthetic", "rmse_energy_id", "rmse_forces_id",
                "rmse_energy_ood", "rmse_forces_ood", "md_failures", "train_seconds", "sample_seconds"}
    for row in rows:
        assert required <= set(row), required - set(row)
        assert all(np.isfinite(row[k]) for k in required if k not in ("policy",))
    for lineage in LINEAGES:
        for g in range(scenario.generations + 1):
            files = {p.name for p in (root / lineage / f"gen-{g:03d}").iterdir()}
            assert {"train.extxyz", "model.model", "metrics.json", "train_log.jsonl"} <= files
            assert ("sampled.extxyz" in files) == (g > 0)
    assert not list(root.rglob("*.tmp")) and not list(root.glob(".work-*"))


def test_generation_zero_is_shared(tiny_run):
    _, _, rows = tiny_run
    gen0 = [r for r in rows if r["generation"] == 0]
    assert len({r["model_hash"] for r in gen0}) == 1
    assert len({r["rmse_forces_ood"] for r in gen0}) == 1


def test_training_set_composition_per_policy(tiny_run):
    scenario, root, rows = tiny_run
    by = {(r["lineage"], r["generation"]): r for r in rows}
    n_syn, n_real0 = scenario.synthetic.n_structures, scenario.real_data.n_structures
    assert by["replace-s0", 2]["n_real"] == 0 and by["replace-s0", 2]["n_train"] <= n_syn
    assert by["accumulate-s0", 2]["n_real"] == n_real0
    offered = [len(read_structures(root / "accumulate-s0" / f"gen-00{g}" / "sampled.extxyz")) for g in (1, 2)]
    assert by["accumulate-s0", 2]["n_synthetic"] == sum(offered)
    assert by["fresh-real-s0", 1]["n_real"] == round(0.25 * n_syn)
    # fixed epochs: optimiser steps grow with the set (accumulate's is the largest at generation 2)
    epochs = {k: len((root / k[0] / f"gen-{k[1]:03d}" / "train_log.jsonl").read_text().splitlines()) for k in by}
    assert all(by[k]["train_steps"] >= epochs[k] == scenario.model.epochs for k in by)
    assert by["accumulate-s0", 2]["train_steps"] > by["replace-s0", 2]["train_steps"]


def test_provenance_traces_every_structure(tiny_run):
    _, root, rows = tiny_run
    hashes = {(r["lineage"], r["generation"]): r["model_hash"] for r in rows}
    for lineage in LINEAGES:
        train = read_structures(root / lineage / "gen-002" / "train.extxyz")
        sampled = read_structures(root / lineage / "gen-002" / "sampled.extxyz")
        assert {a.info["producer"] for a in sampled} == {hashes[lineage, 1]}
        assert {a.info["generation"] for a in sampled} == {1}
        for atoms in train + sampled:
            assert {"origin", "generation", "lineage", "producer", "sampler", "seed"} <= set(atoms.info)
            assert atoms.info["origin"] in ("real", "synthetic")
            if atoms.info["origin"] == "real":
                assert atoms.info["producer"] == "ase.calculators.emt.EMT"


def test_synthetic_labels_come_from_the_producing_model(tiny_run):
    scenario, root, _ = tiny_run
    from collapse_sim.models import load as load_model

    model = load_model(scenario.model, root / "replace-s0" / "gen-000" / "model.model")
    sampled = read_structures(root / "replace-s0" / "gen-001" / "sampled.extxyz")
    again = model.predict(sampled)
    np.testing.assert_allclose([a.get_potential_energy() for a in again],
                               [a.get_potential_energy() for a in sampled], rtol=0, atol=1e-4)


def test_every_model_loads_in_mace_calculator(tiny_run):
    from mace.calculators import MACECalculator

    _, root, _ = tiny_run
    probe = read_structures(root / "probes" / "ood.extxyz")[0]
    for path in sorted(root.glob("*/gen-*/model.model")):
        atoms = probe.copy()
        atoms.calc = MACECalculator(model_paths=str(path), device="cpu", default_dtype="float32")
        assert np.isfinite(atoms.get_forces()).all()


def test_resume_redoes_only_missing_generations_and_matches(tiny_run, tmp_path):
    """Drop the last generation of one lineage, resume in-process: identical metrics."""
    scenario, root, rows = tiny_run
    copy = tmp_path / scenario.name
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "replace-s0" / "gen-002")
    (copy / "replace-s0" / ".gen-002.half.tmp").mkdir()  # a partially staged generation
    kept = {p: p.stat().st_mtime_ns for p in copy.glob("accumulate-s0/gen-*/model.model")}
    resumed = run(RunContext(scenario, copy, LocalExecutor()), progress=lambda m: None)
    strip = lambda rs: [reproducible_fields(r) for r in rs]
    assert strip(resumed) == strip(rows)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert not list(copy.rglob("*.tmp"))


def test_metric_suite_columns_every_generation(tiny_run):
    scenario, root, rows = tiny_run
    for row in rows:
        g = row["generation"]
        for probe in ("id", "ood"):
            assert np.isfinite(row[f"id_twonn_model_{probe}"])
            for target in ("gen0", "ref") + (("prev",) if g else ()):
                for metric in ("cknna", "mknn", "dcor"):
                    assert np.isfinite(row[f"{metric}_{target}_{probe}"]), (metric, target, probe, g)
                assert 0 < row[f"ii_model_to_{target}_{probe}"] <= 2 and 0 < row[f"ii_{target}_to_model_{probe}"] <= 2
            assert (f"cknna_prev_{probe}" in row) == (g > 0)
        assert 1 <= row["vendi_train"] <= row["n_train"] and 0 <= row["coverage_train"] <= 1
        assert ("vendi_sampled" in row) == (g > 0)
        assert row["metric_warnings"] == []
        if g == 0:  # a model compared with itself
            assert row["cknna_gen0_id"] == pytest.approx(1.0) and row["mknn_gen0_ood"] == pytest.approx(1.0)
    for lineage in LINEAGES:
        emb = np.load(root / lineage / "gen-001" / "embeddings_id.npy")
        assert emb.shape[0] == scenario.probes.id.n_structures and np.isfinite(emb).all()
    info = json.loads((root / "reference" / "info.json").read_text())
    assert info["n_train"] == scenario.reference_size and np.isfinite(info["rmse_forces_id"])


@pytest.mark.integration
def test_a_run_under_ray_equals_the_in_process_run(tiny_run, ray_session, tmp_path):
    """Same seeds, Ray tasks instead of in-process calls: the same metrics rows bit for bit
    (wall times and node aside), whatever worker ran which task."""
    from conftest import run_tiny

    from collapse_sim.runtime.executor import RayExecutor

    _, _, rows = tiny_run
    _, _, under_ray = run_tiny(tmp_path, RayExecutor())
    strip = lambda rs: [reproducible_fields(r) for r in rs]
    assert strip(under_ray) == strip(rows)


def test_a_lineage_with_nothing_to_train_on_ends_and_the_run_goes_on(tmp_path):
    """A policy that keeps nothing (here a verifier no label can pass) ends its lineage with the
    reason on record; the other lineages finish, the progress display counts it as finished and
    the report says why it stops early."""
    from conftest import run_scenario
    from scenario_factory import tiny_scenario_dict

    from collapse_sim.report.rundata import load_run
    from collapse_sim.runtime.progress import snapshot
    from collapse_sim.scenario import parse_scenario
    from collapse_sim.store import RunStore

    data = tiny_scenario_dict(policies=[{"kind": "replace"}, {"kind": "verified", "max_force_error": 1e-9,
                                                              "unchecked": "drop"}])
    scenario = parse_scenario(data)
    root, rows = run_scenario(tmp_path, scenario)
    generations = {(r["policy"], r["generation"]) for r in rows}
    assert generations == {("replace", 0), ("replace", 1), ("replace", 2), ("verified", 0)}
    store = RunStore(root)
    ended = store.ended("verified-s0")
    assert ended["generation"] == 1 and "nothing to train on" in ended["reason"] and "policy_kept 0" in ended["reason"]
    assert store.ended("replace-s0") is None
    progress = {p.name: p for p in snapshot(store, [s for s in store.plan().lineages])}
    assert progress["verified-s0"].finished and progress["verified-s0"].stage == "ended"
    warnings = load_run(root).warnings
    assert any("verified-s0: ended at generation 0 of 2: generation 1 has nothing to train on" in w for w in warnings)
