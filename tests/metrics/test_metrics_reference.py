"""Agreement (1e-6 relative) with the reference implementations: DADApy (TwoNN, GRIDE,
information imbalance) and dcor (distance_correlation, u_distance_correlation_sqr).

They live in a separate venv (DADApy pins numpy<2), named by $COLLAPSE_SIM_REFERENCE_PYTHON;
every reference value comes from one subprocess call per session.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import collapse_sim.metrics as cm

_spec = importlib.util.spec_from_file_location(
    "_collapse_sim_reference_client", Path(__file__).parent / "reference" / "client.py"
)
client = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(client)

REL = 1e-6


# integration: runs DADApy and dcor in the .refenv interpreter
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]


def _datasets() -> dict[str, np.ndarray]:
    """Random and structured inputs (no exact ties: DADApy's tie-breaking is arbitrary)."""
    rng = np.random.default_rng(2024)
    gauss = rng.normal(size=(500, 8))
    angles = rng.uniform(0, 2 * np.pi, size=(700, 3))
    torus = np.concatenate([np.cos(angles), np.sin(angles)], axis=1) @ rng.normal(size=(6, 10))
    t = rng.uniform(1.5 * np.pi, 4.5 * np.pi, 600)
    swiss = np.stack([t * np.cos(t), 20 * rng.uniform(size=600), t * np.sin(t)], axis=1)
    centres = rng.normal(scale=5.0, size=(5, 6))
    clusters = centres[rng.integers(0, 5, 400)] + rng.normal(size=(400, 6))
    return {
        "gauss": gauss,
        "gauss_y": np.tanh(gauss @ rng.normal(size=(8, 5))) + 0.2 * rng.normal(size=(500, 5)),
        "gauss_indep": rng.normal(size=(500, 3)),
        "torus": torus,
        "torus_y": torus[:, :4] ** 2 + 0.05 * rng.normal(size=(700, 4)),
        "swiss": swiss,
        "clusters": clusters,
        "clusters_y": clusters @ rng.normal(size=(6, 2)),
        "uni_x": rng.normal(size=(300, 1)),
        "uni_y": rng.exponential(size=(300, 1)),
        "tiny_x": rng.normal(size=(6, 2)),
        "tiny_y": rng.normal(size=(6, 3)),
    }


TWONN = [(data, method) for data in ("gauss", "torus", "swiss", "clusters") for method in ("regression", "ml")]
GRIDE = [("gauss", 64), ("torus", 64), ("swiss", 32), ("clusters", 64)]
IMBALANCE = [
    ("gauss", "gauss_y", 1),
    ("torus", "torus_y", 1),
    ("clusters", "clusters_y", 3),
    ("gauss", "gauss_indep", 2),
]
DCOR = [("gauss", "gauss_y"), ("gauss", "gauss_indep"), ("torus", "torus_y"), ("uni_x", "uni_y"), ("tiny_x", "tiny_y")]


def _tasks() -> list[dict]:
    tasks = []
    for data, method in TWONN:
        algorithm = "base" if method == "regression" else "ml"
        tasks.append(
            {"id": f"twonn-{data}-{method}", "fn": "twonn", "args": [data], "kwargs": {"algorithm": algorithm}}
        )
    for data, range_max in GRIDE:
        tasks.append({"id": f"gride-{data}", "fn": "gride", "args": [data], "kwargs": {"range_max": range_max}})
    for x, y, k in IMBALANCE:
        tasks.append({"id": f"ii-{x}-{y}-{k}", "fn": "information_imbalance", "args": [x, y], "kwargs": {"k": k}})
    for x, y in DCOR:
        for fn in ("distance_correlation", "u_distance_correlation_sqr"):
            tasks.append({"id": f"{fn}-{x}-{y}", "fn": fn, "args": [x, y]})
    return tasks


@pytest.fixture(scope="session")
def datasets():
    return _datasets()


@pytest.fixture(scope="session")
def reference(datasets):
    python = client.reference_python()
    if python is None:
        pytest.skip(
            f"${client.ENV_VAR} is not set to the reference venv's python "
            "(python -m venv .refenv && .refenv/bin/pip install 'dadapy==0.3.4' 'dcor==0.7' 'numpy<2')"
        )
    single_thread = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    return client.run_reference(python, datasets, _tasks(), env=single_thread)["results"]


@pytest.mark.parametrize("data,method", TWONN)
def test_twonn_matches_dadapy(reference, datasets, data, method):
    expected = reference[f"twonn-{data}-{method}"]["id"]
    assert cm.id_twonn(datasets[data], method=method) == pytest.approx(expected, rel=REL)


@pytest.mark.parametrize("data,range_max", GRIDE)
def test_gride_matches_dadapy(reference, datasets, data, range_max):
    expected = reference[f"gride-{data}"]
    ours = cm.id_gride(datasets[data], range_max=range_max)
    assert [s["n2"] for s in ours] == [2 ** (i + 1) for i in range(len(expected["id"]))]
    for key in ("id", "id_err", "mean_distance"):
        assert [s[key] for s in ours] == pytest.approx(expected[key], rel=REL), key


@pytest.mark.parametrize("x,y,k", IMBALANCE)
def test_information_imbalance_matches_dadapy(reference, datasets, x, y, k):
    expected = reference[f"ii-{x}-{y}-{k}"]
    X, Y = datasets[x], datasets[y]
    assert cm.information_imbalance(X, Y, k) == pytest.approx(expected["x_to_y"], rel=REL)
    assert cm.information_imbalance(Y, X, k) == pytest.approx(expected["y_to_x"], rel=REL)


@pytest.mark.parametrize("x,y", DCOR)
def test_distance_correlation_matches_dcor(reference, datasets, x, y):
    X, Y = datasets[x], datasets[y]
    expected = reference[f"distance_correlation-{x}-{y}"]
    assert cm.distance_correlation(X, Y) == pytest.approx(expected, rel=REL)
    expected_u = reference[f"u_distance_correlation_sqr-{x}-{y}"]
    # the U-statistic is ~0 under independence: compare relative to its scale there
    assert cm.u_distance_correlation_sqr(X, Y) == pytest.approx(expected_u, rel=REL, abs=1e-12)
