"""Wall time of ``collapse-sim report`` on a run directory, first build and repeats.

    python benchmarks/bench_report.py RUN_DIR [RUN_DIR ...] [--repeat 2] [--out DIR]

Target: the quickstart run (``collapse-sim run scenarios/quickstart.yaml``) reports in under
30 s on 2 cores. Prints the time of every stage of the build (reading, each figure, the
heatmaps, which read each generation's saved probe embeddings; no model is loaded).

As for every timing here: only meaningful on otherwise idle cores (see bench_metrics.py).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from collapse_sim.report import build_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", type=Path, nargs="+")
    parser.add_argument("--repeat", type=int, default=2, help="builds after the first one (default 2)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the reports (default: a temporary folder)")
    args = parser.parse_args()
    out_dir = args.out or Path(tempfile.mkdtemp(prefix="bench-report-"))
    for i in range(1 + args.repeat):
        label = "first" if i == 0 else f"repeat {i}"
        start = time.perf_counter()
        result = build_report(args.run_dirs, out_dir / "report.html")
        wall = time.perf_counter() - start
        size = result.html.stat().st_size / 1e6
        print(f"{label:>7}: {wall:6.2f} s  ({size:.2f} MB html, {len(result.warnings)} warnings)")
        if i == 0:
            for stage, seconds in sorted(result.timings.items(), key=lambda kv: -kv[1]):
                print(f"         {seconds:6.2f} s  {stage}")
    print(f"report: {out_dir / 'report.html'}")


if __name__ == "__main__":
    main()
