"""Scale on paper: extrapolate a measured run to a large sweep on a cluster.

    python benchmarks/estimate_sweep.py runs/quickstart --lineages 1000 --generations 20 \\
        --nodes 100 --cores-per-node 32

Reads the run's metrics.jsonl and files, and assumes what the loop does: a lineage's
generations run one after another (each needs the previous model), lineages run in
parallel up to the cluster's training slots (cores / ray.cpus_per_training). Per policy,
the training-set size is extrapolated linearly in the generation (accumulate grows by one
synthetic pool per generation, replace stays flat) and training time linearly in the
training-set size (a least-squares fit to the measured rows); sampling, self-labelling,
oracle labelling and metrics take their measured mean per generation. Prints where the time
goes, the wall-time estimate, and what the shared filesystem and Ray's object store carry.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import yaml

STAGES = ["oracle_seconds", "sample_seconds", "label_seconds", "train_seconds", "metrics_seconds"]


def _fit_line(x, y) -> tuple[float, float]:
    """Least-squares (intercept, slope); a flat line when x does not vary."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0:
        return float(y.mean()), 0.0
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), float(slope)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--lineages", type=int, default=1000)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--nodes", type=int, default=100)
    ap.add_argument("--cores-per-node", type=int, default=32)
    args = ap.parse_args()

    rows = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    scenario = yaml.safe_load((args.run_dir / "scenario.yaml").read_text())
    cpus = float(scenario["ray"]["cpus_per_training"])
    model_rows = [r for r in rows if r["generation"] > 0]
    intercept, per_structure = _fit_line([r["n_train"] for r in rows], [r["train_seconds"] for r in rows])
    stage_mean = {s: float(np.mean([r.get(s, 0.0) or 0.0 for r in model_rows])) for s in STAGES if s != "train_seconds"}
    policies = sorted({r["policy"] for r in rows})

    print(f"measured: {args.run_dir} ({len(rows)} rows, {scenario['model']['epochs']} epochs, "
          f"{cpus:g} CPU(s) per training)")
    print(f"  training: {intercept:.1f} s + {per_structure:.3f} s per training structure")
    print("  per model-fed generation: "
          + ", ".join(f"{s.removesuffix('_seconds')} {v:.1f} s" for s, v in stage_mean.items()))

    per_policy = {}
    for policy in policies:
        mine = [r for r in rows if r["policy"] == policy]
        n0, growth = _fit_line([r["generation"] for r in mine], [r["n_train"] for r in mine])
        n_train = [max(n0 + growth * g, 1.0) for g in range(args.generations + 1)]
        train = [intercept + per_structure * n for n in n_train]
        other = sum(stage_mean.values()) * args.generations
        per_policy[policy] = {"n_train_last": n_train[-1], "n_train_mean": float(np.mean(n_train)), "train": sum(train),
                              "lineage": sum(train) + other}
    slots = args.nodes * args.cores_per_node / cpus
    share = {p: args.lineages / len(policies) for p in policies}  # lineages spread evenly over policies
    cpu_seconds = {p: share[p] * per_policy[p]["lineage"] for p in policies}
    longest = max(per_policy[p]["lineage"] for p in policies)
    wall = max(longest, sum(cpu_seconds.values()) / slots)

    print(f"\nsweep: {args.lineages} lineages x {args.generations} generations on {args.nodes} nodes x "
          f"{args.cores_per_node} cores = {slots:.0f} training slots")
    for p in policies:
        v = per_policy[p]
        print(f"  {p:<24} one lineage {v['lineage'] / 3600:6.2f} h (training {100 * v['train'] / v['lineage']:.0f} %, "
              f"last training set {v['n_train_last']:.0f} structures)")
    total_stage = {"train_seconds": sum(share[p] * per_policy[p]["train"] for p in policies)}
    total_stage |= {s: args.lineages * args.generations * v for s, v in stage_mean.items()}
    grand = sum(total_stage.values())
    print("  where the time goes: " + ", ".join(f"{s.removesuffix('_seconds')} {100 * v / grand:.0f} %"
                                                for s, v in sorted(total_stage.items(), key=lambda kv: -kv[1])))
    bound = "the longest lineage's chain of generations" if wall == longest else "cluster throughput (slots busy)"
    print(f"  {grand / 3600 * cpus:.0f} CPU-hours; wall time ~ {wall / 3600:.1f} h, bounded by {bound}; "
          f"{grand / 3600 / slots:.1f} h if perfectly packed")

    gen_dirs = [d for d in args.run_dir.glob("*/gen-*") if d.is_dir()]
    per_gen = float(np.mean([sum(f.stat().st_size for f in d.iterdir()) for d in gen_dirs]))
    per_structure_bytes = float(np.mean([
        (d / "train.extxyz").stat().st_size / json.loads((d / "metrics.json").read_text())["n_train"]
        for d in gen_dirs]))
    mean_n_train = float(np.mean([per_policy[p]["n_train_mean"] for p in policies]))
    measured_n_train = float(np.mean([r["n_train"] for r in rows]))
    fs = args.lineages * args.generations * (per_gen + per_structure_bytes * (mean_n_train - measured_n_train))
    n_syn = scenario["synthetic"]["n_structures"]
    store = args.lineages * args.generations * 2 * n_syn * per_structure_bytes  # sampled frames out, labels back
    files = float(np.mean([len(list(d.iterdir())) for d in gen_dirs]))
    # per generation: each file written to a temporary name and renamed, the staged directory
    # renamed, ~6 status.json rewrites (write + rename), ~3 attempt markers
    ops = args.lineages * args.generations * (2 * files + 1 + 2 * 6 + 3)
    print(f"  shared filesystem: ~{fs / 1e9:.0f} GB written ({per_gen / 1e6:.1f} MB per generation directory measured, "
          f"{per_structure_bytes / 1e3:.1f} kB per structure), "
          f"~{args.lineages * args.generations * files / 1e3:.0f}k files, "
          f"~{ops / 1e6:.1f}M metadata operations (~{ops / wall:.0f}/s over the wall time)")
    print(f"  Ray object store: ~{store / 1e9:.1f} GB in total through task arguments and results (structures only; "
          "models and datasets travel as paths)")


if __name__ == "__main__":
    main()
