"""Benchmark: the quickstart as a new user runs it (embedded Ray), against the same scenario in
one process (``--local``, the serial baseline), and the quickstart's report.

    python benchmarks/bench_quickstart.py               # Ray run, its report, then the --local run
    python benchmarks/bench_quickstart.py --skip-local  # only the Ray run and its report

Each run is a fresh ``collapse-sim run`` process into a temporary folder, timed from start to
exit (Ray's start-up and shutdown included); the report is a fresh ``collapse-sim report``
process. Printed: wall times, each run's stage profile (task seconds summed over its rows,
generation 0 once, the reference model: ``report.analysis.stage_times``), whether the two runs'
rows agree (``loop.reproducible_fields``: they must, bit for bit), and the ratio --local / Ray
wall time: what Ray's parallelism buys on this machine. Targets: the Ray run
≤ 150 s and its report ≤ 10 s on an idle 2-core machine. As for every timing here: only
meaningful on otherwise idle cores.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from collapse_sim.loop import reproducible_fields
from collapse_sim.report.analysis import stage_times
from collapse_sim.report.rundata import load_run

REPO = Path(__file__).resolve().parents[1]


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "collapse_sim.cli", *args], cwd=REPO, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=pythonpath))
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"collapse-sim {args[0]} failed with exit code {proc.returncode}")
    return wall


def profile(run_dir: Path) -> tuple[list[dict], str]:
    run = load_run(run_dir)
    seconds = stage_times(run).seconds
    text = ", ".join(f"{k.removesuffix('_seconds').replace('_', ' ')} {v:.1f} s" for k, v in sorted(seconds.items())
                     if k != "generation_seconds")
    rows = sorted((reproducible_fields(r) for r in run.rows), key=lambda r: (r["lineage"], r["generation"]))
    return rows, text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default=str(REPO / "scenarios" / "quickstart.yaml"))
    ap.add_argument("--skip-local", action="store_true", help="leave out the serial --local baseline")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        name = yaml.safe_load(Path(opts.scenario).read_text())["name"]  # the run directory's name
        ray_wall = timed(["run", opts.scenario, "--out", str(tmp / "ray")])
        ray_rows, ray_profile = profile(tmp / "ray" / name)
        print(f"embedded Ray: {ray_wall:6.1f} s wall | task times: {ray_profile}", flush=True)
        report_wall = timed(["report", str(tmp / "ray" / name), "--out", str(tmp / "report.html")])
        print(f"its report  : {report_wall:6.1f} s wall (collapse-sim report, a fresh process)", flush=True)
        if opts.skip_local:
            return
        local_wall = timed(["run", opts.scenario, "--out", str(tmp / "local"), "--local"])
        local_rows, local_profile = profile(tmp / "local" / name)
        print(f"--local     : {local_wall:6.1f} s wall | task times: {local_profile}")
        print(f"rows of the two runs {'identical' if local_rows == ray_rows else 'DIFFER'} (reproducible fields)")
        print(f"speed-up (--local wall / embedded Ray wall): {local_wall / ray_wall:.2f}x")


if __name__ == "__main__":
    main()
