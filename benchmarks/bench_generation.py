"""Benchmark: where one quickstart generation spends its wall time.

    python benchmarks/bench_generation.py            # quickstart settings, fresh-real policy

Runs the quickstart scenario (one seed, the fresh-real policy so that every stage occurs,
one model-fed generation) in this process without Ray, so every stage's time is plain wall
time on this machine, and prints the share of oracle labelling, sampling, self-labelling,
training and metrics for generation 0 and generation 1, plus the once-per-run costs (probe
labelling, the reference model). The largest share is the next thing to make faster.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = [("oracle labelling", "oracle_seconds"), ("sampling (MD)", "sample_seconds"),
          ("self-labelling", "label_seconds"), ("training", "train_seconds"), ("metrics", "metrics_seconds")]


def scenario(args):
    from collapse_sim.scenario import parse_scenario

    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data.update(name="profile", seeds=[0], generations=1, policies=[{"kind": "fresh-real", "real_fraction": 0.25}])
    if args.engine:
        data["synthetic"]["sampler"]["engine"] = args.engine
    return parse_scenario(data)


def share_table(row: dict) -> list[str]:
    total = row["generation_seconds"]
    lines, accounted = [], 0.0
    for label, key in STAGES:
        seconds = row.get(key, 0.0) or 0.0
        accounted += seconds
        lines.append(f"  {label:<18} {seconds:7.1f} s  {100 * seconds / total:5.1f} %")
    lines.append(f"  {'other (I/O, ...)':<18} {total - accounted:7.1f} s  {100 * (total - accounted) / total:5.1f} %")
    lines.append(f"  {'total':<18} {total:7.1f} s")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", choices=["batched", "ase"], default=None,
                    help="sampler engine (default: the scenario's)")
    ap.add_argument("--out", type=Path, default=None, help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()

    from collapse_sim.loop import RunContext, run
    from collapse_sim.measure.probes import ensure_probes
    from collapse_sim.measure.reference import ensure_reference
    from collapse_sim.runtime.executor import LocalExecutor
    from collapse_sim.store import RunStore

    sc = scenario(args)
    with tempfile.TemporaryDirectory() as tmp:
        root = (args.out or Path(tmp)) / sc.name
        root.mkdir(parents=True, exist_ok=False)
        RunStore(root).write_scenario(sc.resolved_yaml())
        ctx = RunContext(sc, root, LocalExecutor())
        t = time.perf_counter()
        ensure_probes(ctx)
        probes_seconds = time.perf_counter() - t
        t = time.perf_counter()
        ensure_reference(ctx)
        reference_seconds = time.perf_counter() - t
        rows = run(ctx, progress=lambda message: None)
        info = json.loads(RunStore(root).reference.info.read_text())

    print(f"quickstart model, {sc.real_data.n_structures} real / {sc.synthetic.n_structures} synthetic structures, "
          f"sampler {sc.synthetic.sampler.kind} ({getattr(sc.synthetic.sampler, 'engine', '-')}), 1 process")
    print(f"once per run: probe labelling {probes_seconds:.1f} s, reference model {reference_seconds:.1f} s "
          f"(training {info['train_seconds']:.1f} s)")
    for row in rows:
        print(f"generation {row['generation']} ({row['policy']}):")
        print("\n".join(share_table(row)))
    last = rows[-1]
    label, key = max(STAGES, key=lambda stage: last.get(stage[1], 0.0) or 0.0)
    print(f"bottleneck of a model-fed generation: {label} ({100 * last[key] / last['generation_seconds']:.0f} %)")


if __name__ == "__main__":
    sys.exit(main())
