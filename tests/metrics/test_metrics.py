"""Properties of the metric suite: identities, invariances, limits, edge cases, and agreement
with literal dense transcriptions of REFERENCE.md (tests/reference/dense_oracles.py)."""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import collapse_sim.metrics as cm
from collapse_sim.metrics import _pairwise


def _load(name: str):
    path = Path(__file__).parent / "reference" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_collapse_sim_reference_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oracle = _load("dense_oracles")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rotation(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q * np.sign(np.diag(r))


@pytest.fixture(scope="module")
def pair():
    """Two related but different representations of 300 'structures'."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 12))
    Y = np.tanh(X @ rng.normal(size=(12, 9))) + 0.3 * rng.normal(size=(300, 9))
    return X, Y


def clustered(n=240, p=6, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(6, p))
    return centres[rng.integers(0, 6, n)] + rng.normal(size=(n, p))


# --------------------------------------------------------------------------- identities
def test_identities_on_same_representation(pair):
    X, _ = pair
    n = len(X)
    assert cm.cknna(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cm.cknna(X, X, self_terms="mutual") == pytest.approx(1.0, abs=1e-12)
    assert cm.unbiased_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cm.mutual_knn(X, X) == 1.0
    assert cm.distance_correlation(X, X) == pytest.approx(1.0, abs=1e-12)
    assert cm.u_distance_correlation_sqr(X, X) == pytest.approx(1.0, abs=1e-12)
    # the minimum of Δ: every X-neighbour is also the nearest in Y (DADApy: mean rank / (n/2))
    assert cm.information_imbalance(X, X) == pytest.approx(2.0 / n, rel=1e-12)
    assert cm.information_imbalance(X, X, k=3) == pytest.approx(4.0 / n, rel=1e-12)


def test_unrelated_representations_score_low(pair):
    X, _ = pair
    Z = np.random.default_rng(9).normal(size=X.shape)
    assert cm.mutual_knn(X, Z) < 0.1
    assert abs(cm.cknna(X, Z)) < 0.1
    assert abs(cm.unbiased_cka(X, Z)) < 0.05
    assert cm.information_imbalance(X, Z) == pytest.approx(1.0, abs=0.15)
    assert abs(cm.u_distance_correlation_sqr(X, Z)) < 0.02


def test_cknna_mutual_self_terms_do_not_measure_alignment(pair):
    """Why the default is the released code's own-mask normalisation, not REFERENCE.md's literal
    mutual mask: with M in every term, independent representations still score ~1."""
    X, _ = pair
    Z = np.random.default_rng(9).normal(size=X.shape)
    assert cm.cknna(X, Z, self_terms="mutual") > 0.9
    assert cm.cknna(X, Z, self_terms="own") < 0.1


# --------------------------------------------------------------------------- invariances
PAIR_METRICS = {
    "cknna": cm.cknna,
    "cknna_mutual": lambda X, Y: cm.cknna(X, Y, self_terms="mutual"),
    "mknn": cm.mutual_knn,
    "unbiased_cka": cm.unbiased_cka,
    "dcor": cm.distance_correlation,
    "u_dcor": cm.u_distance_correlation_sqr,
    "ii": cm.information_imbalance,
    "ii_k3": lambda X, Y: cm.information_imbalance(X, Y, k=3),
}
TRANSLATION_INVARIANT = {"dcor", "u_dcor", "ii", "ii_k3"}


@pytest.mark.parametrize("name", sorted(PAIR_METRICS))
def test_pair_metric_invariances(pair, name):
    f = PAIR_METRICS[name]
    X, Y = pair
    base = f(X, Y)
    moved = {
        "rotate X, scale 3.7": (3.7 * X @ rotation(X.shape[1], 1), Y),
        "rotate Y, scale 0.02": (X, 0.02 * Y @ rotation(Y.shape[1], 2)),
    }
    if name in TRANSLATION_INVARIANT:
        moved["translate both"] = (X + 50.0, Y - 7.0)
    for label, (Xm, Ym) in moved.items():
        assert f(Xm, Ym) == pytest.approx(base, rel=1e-9, abs=1e-12), label


def test_cosine_metrics_are_not_translation_invariant(pair):
    """Guards the invariance test above: the cosine kernels do see a shift of the origin."""
    X, Y = pair
    assert cm.cknna(X + 3.0, Y) != pytest.approx(cm.cknna(X, Y), rel=1e-3)


SINGLE_METRICS = {
    "id_twonn": cm.id_twonn,
    "id_twonn_ml": lambda X: cm.id_twonn(X, method="ml"),
    "id_gride": lambda X: [s["id"] for s in cm.id_gride(X, range_max=16)],
    "vendi_cosine": cm.vendi_score,
    "vendi_rbf": lambda X: cm.vendi_score(X, kernel="rbf"),
    "coverage": lambda X: cm.coverage(X[::2], X[1::2], k=3),
}
SINGLE_TRANSLATION_INVARIANT = {"id_twonn", "id_twonn_ml", "id_gride", "vendi_rbf", "coverage"}


@pytest.mark.parametrize("name", sorted(SINGLE_METRICS))
def test_single_set_metric_invariances(name):
    f = SINGLE_METRICS[name]
    X = clustered()
    base = f(X)
    cases = {"rotate+scale": 0.3 * X @ rotation(X.shape[1], 4)}
    if name in SINGLE_TRANSLATION_INVARIANT:
        cases["translate"] = X + 100.0
    for label, Xm in cases.items():
        assert f(Xm) == pytest.approx(base, rel=1e-9), label


# --------------------------------------------------------------------------- limits
def test_dcor_of_independent_samples_vanishes_with_n():
    rng = np.random.default_rng(5)
    small = cm.distance_correlation(rng.normal(size=(100, 3)), rng.normal(size=(100, 2)))
    large_x, large_y = rng.normal(size=(3000, 3)), rng.normal(size=(3000, 2))
    large = cm.distance_correlation(large_x, large_y)
    assert large < 0.5 * small
    assert large < 0.08
    assert abs(cm.u_distance_correlation_sqr(large_x, large_y)) < 2e-3
    # and it does not vanish for a dependent pair of the same size
    assert cm.distance_correlation(large_x, large_x[:, :2] ** 2) > 0.3


def _linear_manifold(n, d, rng):
    z = rng.normal(size=(n, d))
    return np.pad(z, ((0, 0), (0, d + 6))) @ rotation(2 * d + 6, 11)


def _torus(n, d, rng):
    """Flat d-torus on a curved embedding in R^(2d), rotated into R^(2d+6)."""
    angles = rng.uniform(0.0, 2 * np.pi, size=(n, d))
    z = np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    return np.pad(z, ((0, 0), (0, 6))) @ rotation(2 * d + 6, 12)


@pytest.mark.parametrize(
    "shape,d", [("linear", 2), ("linear", 5), ("linear", 10), ("curved", 2), ("curved", 5)]
)
def test_twonn_recovers_manifold_dimension(shape, d):
    rng = np.random.default_rng(100 + d)
    X = (_linear_manifold if shape == "linear" else _torus)(5000, d, rng)
    assert cm.id_twonn(X) == pytest.approx(d, rel=0.10)
    assert cm.id_twonn(X, method="ml") == pytest.approx(d, rel=0.10)


def test_gride_scales_double_and_recover_dimension():
    X = _linear_manifold(3000, 4, np.random.default_rng(7))
    scales = cm.id_gride(X, range_max=32)
    assert [(s["n1"], s["n2"]) for s in scales] == [(1, 2), (2, 4), (4, 8), (8, 16), (16, 32)]
    distances = [s["mean_distance"] for s in scales]
    assert distances == sorted(distances)
    for s in scales:
        assert s["id"] == pytest.approx(4.0, rel=0.1)
        assert 0 < s["id_err"] < 0.5


def test_vendi_extremes():
    n = 12
    assert cm.vendi_score(np.tile([1.0, 2.0, -1.0], (n, 1))) == pytest.approx(1.0, abs=1e-9)
    assert cm.vendi_score(np.eye(n)) == pytest.approx(n, rel=1e-9)
    assert cm.vendi_score(3.0 * np.eye(n)[:, ::-1]) == pytest.approx(n, rel=1e-9)
    assert cm.vendi_score(np.tile([1.0, 2.0], (n, 1)), kernel="rbf") == 1.0
    # far-apart points with a narrow RBF are effectively orthogonal
    assert cm.vendi_score(100.0 * np.eye(n), kernel="rbf", bandwidth=1.0) == pytest.approx(n, rel=1e-9)
    # two equal clusters -> 2 effective samples
    two = np.repeat(np.eye(2), n // 2, axis=0)
    assert cm.vendi_score(two) == pytest.approx(2.0, rel=1e-9)


def test_coverage_limits():
    R = clustered()
    assert cm.coverage(R, R) == 1.0
    assert cm.coverage(R + 1e4, R) == 0.0
    first_clusters = R[R[:, 0] < np.median(R[:, 0])]
    assert 0.2 < cm.coverage(first_clusters, R) < 0.8


# --------------------------------------------------------------------------- dense oracles
@pytest.mark.parametrize("data", ["random", "clustered"])
def test_alignment_matches_dense_reference(pair, data):
    if data == "random":
        X, Y = pair
    else:
        X = clustered(seed=1)
        Y = X @ np.random.default_rng(2).normal(size=(6, 4)) + np.random.default_rng(3).normal(size=(len(X), 4))
    for k in (3, 10):
        assert cm.mutual_knn(X, Y, k) == pytest.approx(oracle.mutual_knn(X, Y, k), abs=1e-12)
        assert cm.cknna(X, Y, k) == pytest.approx(oracle.cknna(X, Y, k), rel=1e-10)
        mutual = oracle.cknna(X, Y, k, self_terms="mutual")
        assert cm.cknna(X, Y, k, self_terms="mutual") == pytest.approx(mutual, rel=1e-10)
    assert cm.unbiased_cka(X, Y) == pytest.approx(oracle.unbiased_cka(X, Y), rel=1e-10)


def test_clip_quantile_clips_at_global_quantile_of_abs_values(pair):
    X, Y = pair
    X = X.copy()
    X[:, 0] *= 40.0  # one feature dominates until clipped

    def clip(Z):
        bound = np.quantile(np.abs(Z), 0.95)
        return np.clip(Z, -bound, bound)

    expected = oracle.cknna(clip(X), clip(Y), 10)  # each space at its own quantile
    assert cm.cknna(X, Y, clip_quantile=0.95) == pytest.approx(expected, rel=1e-10)
    assert cm.cknna(X, Y, clip_quantile=0.95) != pytest.approx(cm.cknna(X, Y), rel=1e-3)
    assert cm.cknna(X, Y, clip_quantile=1.0) == pytest.approx(cm.cknna(X, Y), rel=1e-12)


def test_diversity_matches_dense_reference():
    R = clustered(seed=4)
    S = clustered(n=120, seed=5)
    assert cm.vendi_score(R) == pytest.approx(oracle.vendi_cosine(R), rel=1e-10)
    assert cm.vendi_score(R[:5]) == pytest.approx(oracle.vendi_cosine(R[:5]), rel=1e-10)  # n < p branch
    for k in (1, 5):
        assert cm.coverage(S, R, k) == pytest.approx(oracle.coverage(S, R, k), abs=1e-12)


def test_information_imbalance_ties_use_mid_ranks():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(150, 4))
    Y = rng.integers(0, 3, size=(150, 2)).astype(float)  # massive ties, many exact duplicates
    for k in (1, 2):
        value = cm.information_imbalance(X, Y, k)
        assert value == pytest.approx(oracle.information_imbalance_midrank(X, Y, k), rel=1e-12)
        assert value == cm.information_imbalance(X, Y, k)  # deterministic


def test_chunked_paths_match_single_block(pair, monkeypatch):
    """Force many tiny row blocks: results must not depend on the chunking."""
    X, Y = pair
    full = cm.alignment_metrics(X, Y, k=5)
    full.update(cm.diversity_metrics(X, reference=X[::3] + 0.1))
    full["u_dcor"] = cm.u_distance_correlation_sqr(X, Y)
    full["gride"] = cm.id_gride(X, range_max=8)[-1]["id"]
    monkeypatch.setattr(_pairwise, "BLOCK_ELEMENTS", 9000)  # ~30-row blocks at n = 300
    chunked = cm.alignment_metrics(X, Y, k=5)
    chunked.update(cm.diversity_metrics(X, reference=X[::3] + 0.1))
    chunked["u_dcor"] = cm.u_distance_correlation_sqr(X, Y)
    chunked["gride"] = cm.id_gride(X, range_max=8)[-1]["id"]
    assert chunked == pytest.approx(full, rel=1e-10)


# --------------------------------------------------------------------------- edge cases
def test_duplicates_and_ties_give_finite_values():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(200, 5))
    X = np.concatenate([base, base[:40], base[:10]])  # exact duplicates, some triplicated
    lattice = np.stack(np.meshgrid(*[np.arange(6.0)] * 3), -1).reshape(-1, 3)  # r1 == r2 ties
    Y = X @ rng.normal(size=(5, 3))
    values = {
        **cm.alignment_metrics(X, Y),
        **cm.diversity_metrics(X, reference=base),
        "u_dcor": cm.u_distance_correlation_sqr(X, Y),
        "gride": [s["id"] for s in cm.id_gride(X, range_max=16)],
        "twonn_ml": cm.id_twonn(X, method="ml"),
        "vendi_rbf": cm.vendi_score(X, kernel="rbf"),
        "lattice_twonn": cm.id_twonn(np.concatenate([lattice, lattice + 0.01 * rng.normal(size=lattice.shape)])),
        "lattice_gride": [s["id"] for s in cm.id_gride(lattice, range_max=8)],
        "lattice_ii": cm.information_imbalance(lattice, lattice),
    }
    flat = [v for value in values.values() for v in np.atleast_1d(value)]
    assert all(math.isfinite(v) for v in flat), values


def test_twonn_drops_duplicated_points():
    base = _linear_manifold(2000, 3, np.random.default_rng(10))
    with_duplicates = np.concatenate([base, base[:40], base[:10]])
    for method in ("regression", "ml"):
        # only the 40 duplicated points leave the estimate; the other 1960 ratios are unchanged
        assert cm.id_twonn(with_duplicates, method=method) == pytest.approx(cm.id_twonn(base, method=method), rel=0.03)


def test_cknna_refuses_fewer_than_four_k_rows():
    """With k near n CKNNA leaves [-1, 1] (its self-terms shrink), so it is never computed there."""
    X = np.random.default_rng(0).normal(size=(40, 3))
    assert np.isfinite(cm.cknna(X[:40], X[:40] ** 2, k=10))
    assert np.isfinite(cm.alignment_metrics(X, X ** 2, k=10)["cknna"])
    for call in (lambda Z: cm.cknna(Z, Z ** 2, k=10), lambda Z: cm.alignment_metrics(Z, Z ** 2, k=10)):
        with pytest.raises(ValueError, match=r"needs at least 40 rows for k=10, got n=39"):
            call(X[:39])
    assert np.isfinite(cm.mutual_knn(X[:39], X[:39] ** 2, k=10))  # mutual kNN stays defined down to k + 2


def test_degenerate_twonn_raises_clear_error():
    lattice = np.stack(np.meshgrid(*[np.arange(5.0)] * 2), -1).reshape(-1, 2)
    with pytest.raises(ValueError, match="id_twonn.*ties"):
        cm.id_twonn(lattice)
    with pytest.raises(ValueError, match="id_twonn.*duplicates"):
        cm.id_twonn(np.ones((10, 3)))


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda X: cm.cknna(X, X, k=10), "cknna"),
        (lambda X: cm.mutual_knn(X, X, k=10), "mutual_knn"),
        (lambda X: cm.information_imbalance(X, X, k=10), "information_imbalance"),
        (lambda X: cm.coverage(X, X, k=10), "coverage"),
        (lambda X: cm.alignment_metrics(X, X, k=10), "alignment_metrics"),
    ],
)
def test_small_n_error_names_metric_n_and_k(call, name):
    with pytest.raises(ValueError, match=rf"{name}.*k=10.*n=11"):
        call(np.random.default_rng(0).normal(size=(11, 3)))


def test_small_n_for_distance_based_metrics():
    X = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(ValueError, match="u_distance_correlation_sqr.*n=3"):
        cm.u_distance_correlation_sqr(X, X)
    with pytest.raises(ValueError, match="id_twonn.*n=3"):
        cm.id_twonn(X)
    assert math.isfinite(cm.distance_correlation(X, X))


def test_mismatched_rows_and_bad_inputs():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(50, 3)), rng.normal(size=(49, 3))
    for f in (cm.cknna, cm.mutual_knn, cm.unbiased_cka, cm.distance_correlation, cm.information_imbalance):
        with pytest.raises(ValueError, match="same structures.*50 and 49"):
            f(X, Y)
    with pytest.raises(ValueError, match="NaN"):
        cm.id_twonn(np.full((20, 2), np.nan))
    with pytest.raises(ValueError, match="same number of features"):
        cm.coverage(rng.normal(size=(20, 2)), rng.normal(size=(20, 3)))
    with pytest.raises(ValueError, match="all-zero rows"):
        cm.vendi_score(np.zeros((4, 2)))


# --------------------------------------------------------------------------- inputs & devices
def test_numpy_and_torch_inputs_agree(pair):
    X, Y = pair
    expected = cm.alignment_metrics(X, Y)
    got = cm.alignment_metrics(torch.from_numpy(X), torch.from_numpy(Y), device="cpu")
    assert got == pytest.approx(expected, rel=1e-12)
    assert all(type(v) is float for v in got.values())
    single = cm.distance_correlation(torch.from_numpy(X).float(), Y)  # float32 in, float64 inside
    assert single == pytest.approx(expected["dcor"], rel=1e-5)
    assert isinstance(cm.id_twonn(torch.from_numpy(X)), float)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(pair):
    X, Y = pair
    cpu = {**cm.alignment_metrics(X, Y), **cm.diversity_metrics(X, reference=X)}
    Xc, Yc = torch.from_numpy(X).cuda(), torch.from_numpy(Y).cuda()
    gpu = {**cm.alignment_metrics(Xc, Yc), **cm.diversity_metrics(Xc, reference=Xc)}
    assert gpu == pytest.approx(cpu, rel=1e-9)
    assert cm.id_gride(X, device="cuda")[0]["id"] == pytest.approx(cm.id_gride(X)[0]["id"], rel=1e-9)


# --------------------------------------------------------------------------- suites & labels
def test_suites_match_individual_metrics(pair):
    X, Y = pair
    out = cm.alignment_metrics(X, Y, k=7)
    assert out == {
        "cknna": cm.cknna(X, Y, 7),
        "mknn": cm.mutual_knn(X, Y, 7),
        "dcor": cm.distance_correlation(X, Y),
        "ii_x_to_y": cm.information_imbalance(X, Y),
        "ii_y_to_x": cm.information_imbalance(Y, X),
    }
    assert set(cm.diversity_metrics(X)) == {"id_twonn", "vendi"}
    div = cm.diversity_metrics(X, reference=X[:100], k=4)
    assert div["coverage"] == cm.coverage(X, X[:100], k=4) == 1.0


def test_label_statistics_values_and_reference_tails():
    energies = np.arange(101.0)  # percentiles are exact: p01 = 1, p99 = 99
    forces = [np.array([0.0, 1.0]), np.array([2.0, 3.0, 10.0])]  # per-structure arrays are concatenated
    stats = cm.label_statistics(energies, forces)
    assert stats["energy_p01"] == 1.0 and stats["energy_p99"] == 99.0
    assert stats["energy_iqr"] == 50.0 and stats["energy_std"] == pytest.approx(np.std(energies))
    assert stats["force_max"] == 10.0 and stats["force_mean"] == pytest.approx(3.2)
    assert "force_frac_above_ref_p99" not in stats
    ref = cm.label_statistics(
        energies,
        np.array([0.0, 1.0, 2.0, 3.0, 10.0]),
        reference_energies_per_atom=energies[40:60],
        reference_force_magnitudes=np.linspace(0.0, 2.0, 101),  # p99 = 1.98
    )
    assert ref["force_frac_above_ref_p99"] == pytest.approx(3 / 5)
    assert ref["energy_frac_outside_ref_p01_p99"] == pytest.approx(1 - 18 / 101)  # 41..58 lie inside
    with pytest.raises(ValueError, match="force vectors"):
        cm.label_statistics(energies, np.ones((4, 3)))
