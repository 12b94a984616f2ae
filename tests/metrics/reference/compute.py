"""Reference values from DADApy and dcor, run inside the separate reference venv.

DADApy pins numpy<2 and dcor compiles numba kernels on import, so neither can live in
the main environment; the tests batch every request into one call of this script:

    python compute.py inputs.npz request.json output.json

``request.json``: {"tasks": [{"id": str, "fn": str, "args": [array names in inputs.npz],
"kwargs": {...}, "repeat": int (optional: also report the best wall time)}]}.
``output.json``: {"versions": {...}, "results": {id: value}, "seconds": {id: best time}}.
This file must not import collapse_sim (it runs under numpy<2).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from importlib import metadata

import numpy as np


def _twonn(X, algorithm="base", mu_fraction=0.9):
    from dadapy import Data

    intrinsic_dim, _, scale = Data(coordinates=X).compute_id_2NN(algorithm=algorithm, mu_fraction=mu_fraction)
    return {"id": float(intrinsic_dim), "scale": float(scale)}


def _gride(X, range_max=64):
    from dadapy import Data

    ids, errs, scales = Data(coordinates=X).return_id_scaling_gride(range_max=range_max)
    return {"id": ids.tolist(), "id_err": errs.tolist(), "mean_distance": scales.tolist()}


def _information_imbalance(X, Y, k=1):
    from dadapy import MetricComparisons

    n, p = X.shape
    both = np.hstack([X, Y])
    # maxk = n - 1: full neighbour lists, so no rank is drawn at random beyond maxk
    comparisons = MetricComparisons(coordinates=both, maxk=n - 1)
    x_to_y, y_to_x = comparisons.return_inf_imb_two_selected_coords(
        list(range(p)), list(range(p, both.shape[1])), k=k
    )
    return {"x_to_y": float(x_to_y), "y_to_x": float(y_to_x)}


def _distance_correlation(X, Y):
    import dcor

    return float(dcor.distance_correlation(X, Y))


def _u_distance_correlation_sqr(X, Y):
    import dcor

    return float(dcor.u_distance_correlation_sqr(X, Y))


FUNCTIONS = {
    "twonn": _twonn,
    "gride": _gride,
    "information_imbalance": _information_imbalance,
    "distance_correlation": _distance_correlation,
    "u_distance_correlation_sqr": _u_distance_correlation_sqr,
}


def main(inputs_path: str, request_path: str, output_path: str) -> None:
    warnings.simplefilter("ignore")
    arrays = np.load(inputs_path)
    with open(request_path) as fh:
        tasks = json.load(fh)["tasks"]
    results, seconds = {}, {}
    for task in tasks:
        fn = FUNCTIONS[task["fn"]]
        args = [np.ascontiguousarray(arrays[name], dtype=np.float64) for name in task["args"]]
        kwargs = task.get("kwargs", {})
        results[task["id"]] = fn(*args, **kwargs)  # first call also pays any JIT compilation
        if task.get("repeat"):
            best = float("inf")
            for _ in range(int(task["repeat"])):
                start = time.perf_counter()
                fn(*args, **kwargs)
                best = min(best, time.perf_counter() - start)
            seconds[task["id"]] = best
    versions = {name: metadata.version(name) for name in ("numpy", "dadapy", "dcor")}
    with open(output_path, "w") as fh:
        json.dump({"versions": versions, "results": results, "seconds": seconds}, fh)


if __name__ == "__main__":
    main(*sys.argv[1:4])
