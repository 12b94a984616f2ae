"""Wall time of the metric suite, and of ours against DADApy/dcor on identical inputs.

    python benchmarks/bench_metrics.py [--n 10000] [--p 128] [--ref-n 2000] [--threads T]

Part 1 times every metric on n × p random embeddings (target: whole suite ≤ 10 s on
2 cores). Part 2 times ours and the reference packages at --ref-n rows; the reference
side runs in the reference venv ($COLLAPSE_SIM_REFERENCE_PYTHON, else ./.refenv/bin/python),
best of --repeat after one warm-up call (which pays numba compilation).

Timings are only meaningful on otherwise idle cores: when another process keeps the
cores busy, OpenMP's spin-waiting makes multi-threaded torch many times slower
(export OMP_WAIT_POLICY=PASSIVE, or compare with --threads 1).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import torch

import collapse_sim.metrics as cm

ROOT = Path(__file__).resolve().parents[1]


def _client():
    spec = importlib.util.spec_from_file_location("_bench_reference_client", ROOT / "tests" / "reference" / "client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def embeddings(n: int, p: int, seed: int = 0):
    """Two related representations (a nonlinear map of a 16-dim latent) plus noise."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 16))
    X = np.tanh(latent @ rng.normal(size=(16, p))) + 0.1 * rng.normal(size=(n, p))
    Y = latent @ rng.normal(size=(16, p)) + 0.5 * rng.normal(size=(n, p))
    return X, Y


def best_time(fn, repeat: int):
    """(best wall seconds, CPU seconds of that run, value)."""
    best, cpu, value = float("inf"), float("nan"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return best, cpu, value


def suite(n: int, p: int) -> None:
    X, Y = embeddings(n, p)
    X, Y = torch.from_numpy(X), torch.from_numpy(Y)
    cm.alignment_metrics(X[:500], Y[:500])  # warm-up: thread pool, MKL, allocator
    parts = {
        "alignment_metrics (cknna, mknn, dcor, ii both ways)": lambda: cm.alignment_metrics(X, Y),
        "diversity_metrics (twonn, vendi, coverage of Y)": lambda: cm.diversity_metrics(X, reference=Y),
        "id_gride (range_max=64)": lambda: cm.id_gride(X),
        "u_distance_correlation_sqr": lambda: cm.u_distance_correlation_sqr(X, Y),
        "unbiased_cka": lambda: cm.unbiased_cka(X, Y),
    }
    print(f"== suite on {n} x {p} float64 embeddings, torch threads = {torch.get_num_threads()}")
    print(f"  {'':55s} {'wall':>8s} {'cpu':>8s}")
    total = total_cpu = 0.0
    for name, fn in parts.items():
        seconds, cpu, _ = best_time(fn, 1)
        total, total_cpu = total + seconds, total_cpu + cpu
        print(f"  {name:55s} {seconds:7.2f}s {cpu:7.2f}s")
    print(f"  {'TOTAL (target <= 10 s wall on 2 idle cores)':55s} {total:7.2f}s {total_cpu:7.2f}s")


def versus_reference(n: int, repeat: int, threads: int) -> None:
    client = _client()
    python = client.reference_python() or str(ROOT / ".refenv" / "bin" / "python")
    if not Path(python).exists():
        print(f"== reference timing skipped: set ${client.ENV_VAR} or create {ROOT / '.refenv'}")
        return
    X, Y = embeddings(n, 32, seed=1)
    tasks = [
        {"id": "twonn", "fn": "twonn", "args": ["X"]},
        {"id": "gride", "fn": "gride", "args": ["X"]},
        {"id": "ii", "fn": "information_imbalance", "args": ["X", "Y"]},
        {"id": "dcor", "fn": "distance_correlation", "args": ["X", "Y"]},
        {"id": "udcor", "fn": "u_distance_correlation_sqr", "args": ["X", "Y"]},
    ]
    for task in tasks:
        task["repeat"] = repeat
    thread_vars = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    thread_env = {name: str(threads) for name in thread_vars}
    reference = client.run_reference(python, {"X": X, "Y": Y}, tasks, env=thread_env)
    ours = {
        "twonn": lambda: cm.id_twonn(X),
        "gride": lambda: cm.id_gride(X),
        "ii": lambda: (cm.information_imbalance(X, Y), cm.information_imbalance(Y, X)),
        "dcor": lambda: cm.distance_correlation(X, Y),
        "udcor": lambda: cm.u_distance_correlation_sqr(X, Y),
    }
    labels = {
        "twonn": "id_twonn            vs DADApy compute_id_2NN",
        "gride": "id_gride            vs DADApy return_id_scaling_gride",
        "ii": "II both directions  vs DADApy (maxk = n-1, exact ranks)",
        "dcor": "distance_correlation vs dcor",
        "udcor": "u_dcor_sqr          vs dcor",
    }
    versions = ", ".join(f"{k} {v}" for k, v in reference["versions"].items())
    print(f"== {n} x 32 inputs: ours vs reference ({versions}); best of {repeat}, {threads} thread(s) each")
    print(f"  {'metric':58s} {'ours':>9s} {'reference':>10s} {'ours/ref':>9s}")
    for key, fn in ours.items():
        seconds, _, _ = best_time(fn, repeat)
        ref_seconds = reference["seconds"][key]
        print(f"  {labels[key]:58s} {seconds:8.3f}s {ref_seconds:9.3f}s {seconds / ref_seconds:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--p", type=int, default=128)
    parser.add_argument("--ref-n", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"cpu count {os.cpu_count()}, load average {load} (other jobs inflate every number)")
    suite(args.n, args.p)
    if not args.no_reference:
        versus_reference(args.ref_n, args.repeat, torch.get_num_threads())


if __name__ == "__main__":
    main()
