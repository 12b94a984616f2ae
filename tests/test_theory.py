"""Closed-form validation: the loop itself (policies, pools, provenance, executor) reproduces
the exact collapse laws of linear regression on a fixed design and of Gaussian refitting, and
the checker rejects the wrong law (replace vs accumulate swapped, wrong estimator)."""
from __future__ import annotations

import copy
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from collapse_sim.runtime.executor import LocalExecutor
from collapse_sim.scenario import ScenarioError, parse_scenario
from collapse_sim.theory import (
    agrees,
    analyse,
    corrected_fixed_point,
    gaussian_laws,
    kept_error_rate,
    linear_law,
    run_theory,
    verification_threshold,
)

ROOT = Path(__file__).resolve().parents[1]
# Seeds: ‖ŵ − w*‖² is close to a scaled χ²₁ (the atomistic designs have one dominant direction of
# (XᵀX)⁻¹), so telling accumulate's saturation from replace's growth at n = 10 needs ~40 seeds
LINEAR_SEEDS = 48
GAUSSIAN_SEEDS = 32
RAY_SEEDS = 20
GENERATIONS = 9  # n = 1..10 fits
SWAPPED = {"replace": "accumulate", "accumulate": "replace"}


def scenario_file(name: str) -> dict:
    return yaml.safe_load((ROOT / "scenarios" / f"{name}.yaml").read_text())


def linear_dict(name, n_basis, n_structures, sigma, weights, seeds=LINEAR_SEEDS, **extra) -> dict:
    data = scenario_file("theory-linear")
    data.update(name=name, seeds=list(range(seeds)), generations=GENERATIONS)
    basis = {"n_basis": n_basis, "r_cut": 5.0, "r_min": 2.0}
    data["oracle"].update(kwargs={"weights": weights, **basis}, energy_noise=sigma)
    data["model"] = {"kind": "linear", **basis}
    data["real_data"]["n_structures"] = data["synthetic"]["n_structures"] = n_structures
    data["synthetic"]["energy_noise"] = sigma
    data.update(copy.deepcopy(extra))
    return data


def gaussian_dict(name, estimator, m, seeds=GAUSSIAN_SEEDS) -> dict:
    data = scenario_file("theory-gaussian")
    data.update(name=name, seeds=list(range(seeds)), generations=GENERATIONS)
    data["model"] = {"kind": "gaussian", "estimator": estimator}
    data["real_data"]["n_structures"] = data["synthetic"]["n_structures"] = m
    return data


#: two (d, T, sigma) settings of the linear laws
LINEAR = {
    "d4-T8-s0.1": linear_dict("lin-a", 3, 8, 0.1, [-3.5, 0.08, -0.04, 0.02]),
    "d5-T10-s0.03": linear_dict("lin-b", 4, 10, 0.03, [-3.2, 0.05, 0.03, -0.02, 0.01]),
}
#: M = 6 samples per fit: the two estimators' log-variance drifts differ by 0.18 per generation
GAUSSIAN = {"mle": gaussian_dict("gauss-mle", "mle", 6), "unbiased": gaussian_dict("gauss-unbiased", "unbiased", 6)}
A = "d4-T8-s0.1"


@pytest.fixture(scope="module")
def fast_dir(tmp_path_factory):
    """Run directories on tmpfs when there is one: the loop fsyncs every model file."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        path = Path(tempfile.mkdtemp(prefix="collapse-sim-theory-", dir=shm))
        yield path
        shutil.rmtree(path, ignore_errors=True)
    else:
        yield tmp_path_factory.mktemp("theory")


def _run(data, base):
    scenario = parse_scenario(data)
    root = base / scenario.name
    return scenario, root, run_theory(scenario, root, LocalExecutor())


@pytest.fixture(scope="module")
def linear_runs(fast_dir):
    return {key: _run(data, fast_dir) for key, data in LINEAR.items()}


@pytest.fixture(scope="module")
def gaussian_runs(fast_dir):
    return {key: _run(data, fast_dir) for key, data in GAUSSIAN.items()}


# --- the checker ----------------------------------------------------------------------------
def test_checker_tolerance():
    assert agrees(1.09, 0.001, 1.0) and not agrees(1.11, 0.001, 1.0)  # 10 % floor
    assert agrees(1.5, 0.2, 1.0) and not agrees(1.7, 0.2, 1.0)  # 3 standard errors


def test_closed_forms_reduce_to_the_published_laws():
    for n in range(1, 11):
        assert linear_law("replace", n, 2.0, 0.01, 0.01) == pytest.approx(0.01 * n * 2.0)
        accumulate = 0.01 * 2.0 * sum(1 / j**2 for j in range(1, n + 1))
        assert linear_law("accumulate", n, 2.0, 0.01, 0.01) == pytest.approx(accumulate)
        m, q = 10, 0.9
        mle, unbiased = gaussian_laws("mle", n, 1.0, m, m), gaussian_laws("unbiased", n, 1.0, m, m)
        assert mle["var"][0] == pytest.approx(q**n) and mle["mean_sq"][0] == pytest.approx(1 - q**n)
        assert unbiased["var"][0] == pytest.approx(1.0) and unbiased["mean_sq"][0] == pytest.approx(n / m)
    logs = [gaussian_laws("unbiased", n, 1.0, 10, 10)["log_var"][0] for n in range(1, 11)]
    assert all(b < a for a, b in zip(logs, logs[1:]))  # E log σ² falls although E σ² stays put


def test_the_corrected_law_contracts_to_its_fixed_point():
    var_r, var_s, trace = 0.01, 0.02, 2.0
    for n in range(1, 11):  # no correction is replace
        assert linear_law("corrected", n, trace, var_r, var_s, t=0.0) == pytest.approx(linear_law(
            "replace", n, trace, var_r, var_s))
    for t in (0.2, 0.5, 0.8, 1.0):
        fixed = corrected_fixed_point(t, var_r, var_s) * trace
        gaps = [abs(linear_law("corrected", n, trace, var_r, var_s, t=t) - fixed) for n in range(1, 60)]
        assert all(b <= a * (1 - t) ** 2 + 1e-15 for a, b in zip(gaps, gaps[1:]))  # contracts by (1 - t)²
        assert gaps[-1] < 1e-6 * fixed
    assert corrected_fixed_point(1.0, var_r, var_s) == var_r  # full correction: the oracle's own noise
    equal = [corrected_fixed_point(t, 0.01, 0.01) for t in (0.2, 0.5, 0.8)]
    assert equal[1] < equal[0] and equal[1] < equal[2]  # equal noise: lowest at t = 1/2


def test_verification_threshold_is_where_the_kept_labels_turn_wrong():
    assert kept_error_rate(0.3) == pytest.approx(0.3) and verification_threshold(1.0, 1.0) == 0.5  # no verifier
    assert kept_error_rate(0.9, 1.0, 0.0) == 0.0 and verification_threshold(1.0, 0.0) == 1.0  # an oracle verifier
    for phi, psi in ((0.9, 0.45), (0.4, 0.9), (0.7, 0.2)):
        p_star = verification_threshold(phi, psi)
        assert kept_error_rate(p_star, phi, psi) == pytest.approx(0.5)
        assert kept_error_rate(p_star - 0.01, phi, psi) < 0.5 < kept_error_rate(p_star + 0.01, phi, psi)


@pytest.mark.integration  # 64 seeds x 4 policies x one round through the loop (about 45 s)
def test_verification_law_holds_and_learning_breaks_down_above_p_star(fast_dir):
    scenario, _, report = _run(scenario_file("theory-linear-verified"), fast_dir)
    assert report.ok, "\n" + report.table()
    after = {c.policy: c for c in report.checked if c.generation == 1}
    assert set(after) == {"replace", "oracle-verifier", "weak-verifier", "misled-verifier"}
    # p = 0.4 lies below the weak verifier's p* = 2/3 and above the misled one's 0.31: the sign says which
    assert after["weak-verifier"].sim_mean - 3 * after["weak-verifier"].sim_se > 0
    assert after["misled-verifier"].sim_mean + 3 * after["misled-verifier"].sim_se < 0
    assert after["oracle-verifier"].sim_mean == pytest.approx(1.0, abs=1e-3)


@pytest.mark.integration  # 24 seeds x 4 policies x 10 fits through the loop (about a minute)
def test_self_correction_law_holds_and_rejects_the_replace_law(fast_dir):
    scenario, root, report = _run(scenario_file("theory-linear-corrected"), fast_dir)
    assert report.ok, "\n" + report.table()
    assert {c.policy for c in report.checked} == {"replace", "corrected-0.25", "corrected-1", "corrected-4"}
    wrong = analyse(scenario, root, laws={"corrected-1": "replace"})
    late = [c for c in wrong.select("corrected-1", "‖ŵ_n − w*‖²") if c.n >= 6]
    assert late and not any(c.ok for c in late), wrong.table()


# --- linear regression on a fixed design --------------------------------------------------------
@pytest.mark.integration  # many-seed runs of the loop (about a minute)
@pytest.mark.parametrize("setting", list(LINEAR))
def test_linear_laws_hold_at_every_generation(linear_runs, setting):
    scenario, _, report = linear_runs[setting]
    assert len(scenario.seeds) >= 20
    for policy in ("replace", "accumulate"):
        rows = report.select(policy, "‖ŵ_n − w*‖²")
        assert [c.n for c in rows] == list(range(1, 11))
        assert all(c.closed is not None for c in rows)
    assert report.ok, "\n" + report.table()


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
@pytest.mark.parametrize("setting", list(LINEAR))
def test_linear_checker_rejects_swapped_policies(linear_runs, setting):
    scenario, root, report = linear_runs[setting]
    swapped = analyse(scenario, root, laws=SWAPPED)
    assert not swapped.ok
    quantity = "‖ŵ_n − w*‖²"
    # replace's data against the accumulate law: rejected from n = 3 on, ever more clearly
    replace = swapped.select("replace", quantity)
    assert all(not c.ok for c in replace if c.n >= 3), swapped.table()
    assert replace[-1].z > 10
    # accumulate's data against the replace law: below it from n = 2 on, and rejected
    accumulate = swapped.select("accumulate", quantity)
    assert all(c.z < 0 for c in accumulate if c.n >= 2) and any(not c.ok for c in accumulate), swapped.table()
    # at n = 1 both laws coincide (the fit on real data)
    assert all(c.n > 1 for c in swapped.failures())


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
def test_linear_quantities_come_from_the_run(linear_runs):
    """‖ŵ − w*‖² is read from the saved model files and tr((XᵀX)⁻¹) from each seed's generation-0 design."""
    from collapse_sim.data.io import read_structures
    from collapse_sim.models.linear import LinearModel, PairBasis

    scenario, root, report = linear_runs[A]
    model = LinearModel.load(root / "accumulate-s3" / "gen-004" / "model.model", scenario.model)
    error = np.sum((model.weights - np.array(scenario.oracle.kwargs["weights"])) ** 2)
    assert report.select("accumulate", "‖ŵ_n − w*‖²")[4].simulated[3] == pytest.approx(error)
    gen0_train = read_structures(root / "replace-s3" / "gen-000" / "train.extxyz")
    X = PairBasis.from_settings(scenario.model).design(gen0_train)
    assert report.extra["traces"][3] == pytest.approx(np.trace(np.linalg.inv(X.T @ X)), rel=1e-9)
    assert len(set(np.round(list(report.extra["traces"].values()), 9))) == len(scenario.seeds)  # per-seed designs


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
def test_fixed_design_relabels_generation_zero_structures(linear_runs):
    from collapse_sim.data.io import read_structures
    from collapse_sim.data.noise import synthetic_noise
    from collapse_sim.models.linear import LinearModel

    scenario, root, _ = linear_runs[A]
    real = read_structures(root / "replace-s1" / "gen-000" / "train.extxyz")
    assert {a.info["origin"] for a in real} == {"real"}
    for lineage in ("replace-s1", "accumulate-s1"):
        for g in (1, 5, GENERATIONS):
            gen_dir = root / lineage / f"gen-{g:03d}"
            sampled = read_structures(gen_dir / "sampled.extxyz")
            assert len(sampled) == len(real)
            for a, b in zip(sampled, real):
                np.testing.assert_array_equal(a.positions, b.positions)
                np.testing.assert_array_equal(a.cell.array, b.cell.array)
            assert {a.info["origin"] for a in sampled} == {"synthetic"}
            assert {a.info["generation"] for a in sampled} == {g - 1}
            # label = previous model's prediction + the keyed synthetic noise, exactly
            prev = LinearModel.load(root / lineage / f"gen-{g - 1:03d}" / "model.model", scenario.model)
            clean = np.array([a.get_potential_energy() for a in prev.predict(sampled)])
            noise = np.array([a.get_potential_energy() for a in sampled]) - clean
            expected = synthetic_noise(scenario.synthetic.energy_noise, len(real), 1, lineage, g)
            np.testing.assert_allclose(noise, expected, atol=1e-9)
    accumulated = read_structures(root / "accumulate-s1" / f"gen-{GENERATIONS:03d}" / "train.extxyz")
    assert len(accumulated) == (GENERATIONS + 1) * len(real)  # n labelled copies of X


def test_fixed_design_sampler_unit():
    from ase import Atoms

    from collapse_sim.data.pools import Pool
    from collapse_sim.policies import GenerationData
    from collapse_sim.samplers import make as make_sampler
    from collapse_sim.samplers import starting_structures
    from collapse_sim.samplers.fixed_design import FixedDesignSettings

    real = Pool("real", 0, tuple(Atoms("Cu", positions=[[0, 0, i]]) for i in range(3)))
    synthetic = Pool("synthetic", 0, tuple(Atoms("Cu", positions=[[1, 1, i]]) for i in range(3)))
    history = [GenerationData(0, [real]), GenerationData(1, [synthetic], synthetic)]  # a replace lineage
    sampler = make_sampler(FixedDesignSettings(kind="fixed-design"))
    starts = starting_structures(sampler, history)
    assert [a.positions[0, 2] for a in starts] == [0, 1, 2] and all(a.positions[0, 0] == 0 for a in starts)
    out = sampler.sample(None, starts, 3, 0, LocalExecutor()).structures
    assert [a.positions.tolist() for a in out] == [a.positions.tolist() for a in real.structures]
    assert out[0] is not real.structures[0] and out[0].calc is None
    with pytest.raises(ValueError, match="n_structures"):
        sampler.sample(None, starts, 4, 0, LocalExecutor())


# --- label noise --------------------------------------------------------------------------
def test_oracle_noise_is_keyed_per_structure(tmp_path):
    from collapse_sim.loop import RunContext
    from collapse_sim.oracles.labelling import oracle_structures

    data = linear_dict("noise", 3, 12, 0.1, [-3.5, 0.08, -0.04, 0.02], seeds=1)
    energies = {}
    for chunk, noise in ((5, 0.1), (12, 0.1), (5, 0.0)):
        data["oracle"].update(chunk_size=chunk, energy_noise=noise)
        sc = parse_scenario(data)
        got, _ = oracle_structures(RunContext(sc, tmp_path, LocalExecutor()), sc.real_data, 12, (0, "real", 0),
                                   dict(origin="real", generation=0))
        energies[chunk, noise] = np.array([a.get_potential_energy() for a in got])
    np.testing.assert_array_equal(energies[5, 0.1], energies[12, 0.1])  # chunking does not matter
    delta = energies[5, 0.1] - energies[5, 0.0]
    assert np.all(delta != 0) and 0.03 < delta.std() < 0.3


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
def test_noisy_run_is_reproducible_and_resumes_identically(linear_runs, tmp_path):
    """A second run of the same lineages, interrupted and resumed, gives bit-identical models."""
    from collapse_sim.loop import RunContext, run

    scenario, root, _ = linear_runs[A]
    small = parse_scenario(scenario.model_dump(mode="json") | {"seeds": [0], "generations": 3})
    again = tmp_path / "again"
    run(RunContext(small, again, LocalExecutor()), progress=lambda m: None)
    shutil.rmtree(again / "accumulate-s0" / "gen-003")
    shutil.rmtree(again / "replace-s0" / "gen-002")
    run(RunContext(small, again, LocalExecutor()), progress=lambda m: None)
    for lineage in ("replace-s0", "accumulate-s0"):
        for g in range(4):
            a = (root / lineage / f"gen-{g:03d}" / "model.model").read_text()
            b = (again / lineage / f"gen-{g:03d}" / "model.model").read_text()
            assert a == b, (lineage, g)


# --- Gaussian refitting -------------------------------------------------------------------
@pytest.mark.integration  # many-seed runs of the loop (about a minute)
@pytest.mark.parametrize("estimator", list(GAUSSIAN))
def test_gaussian_laws_hold_at_every_generation(gaussian_runs, estimator):
    scenario, _, report = gaussian_runs[estimator]
    assert len(scenario.seeds) >= 20
    for quantity in ("var", "mean_sq", "log_var"):
        rows = report.select("replace", quantity)
        assert [c.n for c in rows] == list(range(1, 11)) and all(c.closed is not None for c in rows)
    assert report.ok, "\n" + report.table()
    log_var = [c.sim_mean for c in report.select("replace", "log_var")]
    assert log_var[-1] < log_var[0] - 0.5  # E log σ² drifts down, whichever estimator


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
@pytest.mark.parametrize("estimator", list(GAUSSIAN))
def test_gaussian_checker_rejects_swapped_policy(gaussian_runs, estimator):
    scenario, root, _ = gaussian_runs[estimator]
    swapped = analyse(scenario, root, laws=SWAPPED)  # the accumulate lineage checked against the replace law
    assert not swapped.ok
    assert {c.policy for c in swapped.failures()} == {"accumulate"}, swapped.table()


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
@pytest.mark.parametrize("estimator, wrong", [("mle", "unbiased"), ("unbiased", "mle")])
def test_gaussian_checker_rejects_wrong_estimator(gaussian_runs, estimator, wrong):
    scenario, root, _ = gaussian_runs[estimator]
    report = analyse(scenario, root, estimator=wrong)
    assert not report.ok, report.table()


@pytest.mark.integration  # many-seed runs of the loop (about a minute)
def test_gaussian_values_come_from_metrics_rows(gaussian_runs):
    import json

    scenario, root, report = gaussian_runs["mle"]
    rows = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["lineage"] == "replace-s2" and r["generation"] == 7)
    assert report.select("replace", "var")[7].simulated[2] == row["gauss_var"]
    assert set(row) >= {"gauss_mean", "gauss_var", "n_train", "model_hash"} and "rmse_energy_id" not in row
    assert not (root / "probes").exists() and not (root / "reference").exists()  # metrics disabled


# --- through Ray and the command line -------------------------------------------------------
@pytest.mark.integration  # starts Ray
def test_validate_theory_cli_under_ray(ray_session, linear_runs, fast_dir, tmp_path, capsys):
    """The same linear setting through `collapse-sim validate-theory` on the session's Ray:
    it agrees with the closed forms and its models are bit-identical to the local run's."""
    from collapse_sim.cli import main

    scenario, local_root, _ = linear_runs[A]
    path = tmp_path / "lin.yaml"
    path.write_text(yaml.safe_dump(LINEAR[A] | {"name": "lin-ray"}))
    out = fast_dir / "ray"
    code = main(["validate-theory", str(path), "--seeds", str(RAY_SEEDS), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "all agree (20 checked)" in printed and f"{RAY_SEEDS} seeds" in printed
    for lineage in ("replace-s7", "accumulate-s7"):
        a = (local_root / lineage / f"gen-{GENERATIONS:03d}" / "model.model").read_text()
        b = (out / "lin-ray" / lineage / f"gen-{GENERATIONS:03d}" / "model.model").read_text()
        assert a == b


def test_validate_theory_refuses_other_scenarios(tmp_path, capsys):
    from scenario_factory import quickstart_dict

    from collapse_sim.cli import main

    path = tmp_path / "q.yaml"
    path.write_text(yaml.safe_dump(quickstart_dict()))
    assert main(["validate-theory", str(path), "--local"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model.kind" in err
    path.write_text(yaml.safe_dump(LINEAR[A]))
    assert main(["validate-theory", str(path), "--local", "--seeds", "1"]) == 2
    assert "--seeds" in capsys.readouterr().err


@pytest.mark.parametrize("mutate, expected", [
    (lambda d: d["synthetic"].update(n_structures=5), "synthetic.n_structures"),
    (lambda d: d.update(model={"kind": "mace"}), "system.kind"),
    (lambda d: d.update(metrics={"enabled": True}), "metrics.enabled"),
    (lambda d: d["synthetic"].update(energy_noise=-1), "synthetic.energy_noise"),
])
def test_theory_scenarios_validate(mutate, expected):
    gaussian = expected in ("system.kind", "metrics.enabled")
    data = copy.deepcopy(GAUSSIAN["mle"]) if gaussian else copy.deepcopy(LINEAR[A])
    mutate(data)
    with pytest.raises(ScenarioError, match=expected.replace(".", r"\.")):
        parse_scenario(data)
    for name in ("theory-linear", "theory-gaussian"):
        parse_scenario(scenario_file(name))
