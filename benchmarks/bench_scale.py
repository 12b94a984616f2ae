"""Benchmark: a thousand lineages on the embedded Ray — orchestration overhead, driver memory,
store size, resume after kill -9, report and compare.

    python benchmarks/bench_scale.py                                   # 1000 lineages x 10 generations
    python benchmarks/bench_scale.py --lineages 100 --generations 5    # a quick look
    python benchmarks/bench_scale.py --keep /tmp/scale                 # keep the run directories

The sweep is the closed-form linear scenario (``scenarios/theory-linear.yaml``: a linear model
on a fixed design, replace and accumulate), with as many seeds as make ``--lineages``: each
lineage-generation does milliseconds of work, so what the wall time shows beyond that work is
the tool's own cost — scheduling, the store's atomic writes, the driver's bookkeeping.

Measured, each printed against its target:

- orchestration overhead per lineage-generation: (wall time − the work inside the tasks /
  cores) / lineage-generations, where the work is the sum of the rows' ``generation_seconds``
  (the baseline: the same generations' own time, measured in the same run); target ≤ 50 ms on
  2 cores;
- the driver's peak memory (VmHWM of the ``collapse-sim`` process); target ≤ 2 GB;
- the run directory's size and file count;
- resume after kill -9: a second run of the same scenario is killed (SIGKILL) once about half
  its generations are committed, then resumed; its rows must equal the uninterrupted run's (timing
  columns aside);
- ``collapse-sim report`` on the run (target ≤ 60 s) and ``collapse-sim compare``.

Timings are only meaningful on otherwise idle cores.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"overhead_ms": 50.0, "driver_peak_gb": 2.0, "report_s": 60.0}


def scenario(lineages: int, generations: int) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "theory-linear.yaml").read_text())
    policies = len(data["policies"])
    data.update(name="scale", seeds=list(range(max(1, lineages // policies))), generations=generations)
    return data


def collapse_sim(*args: str, **kwargs) -> subprocess.Popen:
    """``collapse-sim args`` started; its stderr goes to a file (a pipe nobody reads while the run
    is watched would fill and stall it), read back by ``errors``."""
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([sys.executable, "-m", "collapse_sim.cli", *args], stdout=subprocess.DEVNULL,
                            stderr=log, text=True, **kwargs)
    proc.log = log  # Popen keeps no handle on a file it was given
    return proc


def errors(proc: subprocess.Popen) -> str:
    """The last of what the process wrote to stderr."""
    proc.log.seek(0)
    return proc.log.read()[-2000:]


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident set (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def committed(run_dir: Path) -> int:
    """Generations committed so far (each a gen-NNN directory with its metrics row)."""
    return sum(1 for _ in run_dir.glob("*/gen-*/metrics.json"))


def run_and_watch(args: list[str], kill_at: int | None = None, run_dir: Path | None = None,
                  on_poll=None) -> dict:
    """Run ``collapse-sim args`` to the end (or SIGKILL it once ``run_dir`` has ``kill_at``
    committed generations); its wall time, peak memory and whether it was killed.
    ``on_poll(pid, seconds)`` is called at every poll (every 0.2 s)."""
    start = time.perf_counter()
    proc = collapse_sim(*args)
    peak, killed, polls = 0, False, 0
    while proc.poll() is None:
        peak = max(peak, peak_rss_bytes(proc.pid) or 0)
        if on_poll is not None:
            on_poll(proc.pid, time.perf_counter() - start)
        polls += 1
        if kill_at is not None and polls % 5 == 0 and committed(run_dir) >= kill_at:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            proc.wait()
            break
        time.sleep(0.2)
    wall = time.perf_counter() - start
    if not killed and proc.returncode != 0:
        raise SystemExit(f"collapse-sim {' '.join(args)} failed ({proc.returncode}): {errors(proc)}")
    return {"wall_s": wall, "peak_bytes": peak, "killed": killed}


def rows(run_dir: Path) -> list[dict]:
    """The run's rows without the columns that record time or the machine (the resume check)."""
    from collapse_sim.loop import reproducible_fields

    out = [reproducible_fields(json.loads(line)) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
           if line.strip()]
    return sorted(out, key=lambda r: (r["lineage"], r["generation"]))


def store_size(run_dir: Path) -> tuple[int, int]:
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def timed(*args: str) -> float:
    start = time.perf_counter()
    proc = collapse_sim(*args)
    proc.wait()
    if proc.returncode not in (0, 1):  # compare exits 1 when a policy is past the threshold
        raise SystemExit(f"collapse-sim {' '.join(args)} failed ({proc.returncode}): {errors(proc)}")
    return time.perf_counter() - start


def with_run_options(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--num-cpus`` and ``--keep``, which every benchmark that runs collapse-sim takes."""
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1, help="size of the embedded Ray")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the run directories in")
    return parser


def work_folder(keep: Path | None, name: str) -> Path:
    """``keep``, or a new temporary folder (the caller removes it)."""
    base = keep or Path(tempfile.mkdtemp(prefix=f"collapse-sim-{name}-"))
    base.mkdir(parents=True, exist_ok=True)
    return base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lineages", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=10)
    args = with_run_options(parser).parse_args(argv)
    base = work_folder(args.keep, "scale")
    data = scenario(args.lineages, args.generations)
    path = base / "scale.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    n_lineages = len(data["seeds"]) * len(data["policies"])
    lineage_generations = n_lineages * args.generations
    common = ["--num-cpus", str(args.num_cpus), "--progress-interval", "60"]
    try:
        whole = run_and_watch(["run", str(path), "--out", str(base / "a"), *common])
        run_dir = base / "a" / "scale"
        reference = rows(run_dir)
        work = sum(json.loads(line).get("generation_seconds") or 0.0
                   for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip())
        overhead_ms = 1000 * (whole["wall_s"] - work / args.num_cpus) / lineage_generations
        files, size = store_size(run_dir)
        report_s = timed("report", str(run_dir), "--out", str(base / "report.html"), "--no-heatmaps")
        compare_s = timed("compare", str(run_dir), "--out", str(base / "compare.md"))
        killed_dir = base / "b" / "scale"
        half = len(reference) // 2
        first = run_and_watch(["run", str(path), "--out", str(base / "b"), *common], kill_at=half,
                              run_dir=killed_dir)
        at_kill = committed(killed_dir)
        again = run_and_watch(["resume", str(killed_dir), *common])
        same = rows(killed_dir) == reference
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    verdict = {True: "met", False: "MISSED"}
    print(f"{n_lineages} lineages x {args.generations} generations = {lineage_generations} lineage-generations, "
          f"embedded Ray on {args.num_cpus} CPUs")
    print(f"wall {whole['wall_s']:.1f} s; work inside the tasks {work:.1f} s (sum of generation_seconds)")
    print(f"orchestration overhead per lineage-generation: {overhead_ms:.1f} ms "
          f"(target <= {TARGETS['overhead_ms']:.0f} ms: {verdict[overhead_ms <= TARGETS['overhead_ms']]})")
    peak_gb = whole["peak_bytes"] / 2**30
    print(f"driver peak memory: {peak_gb:.2f} GB (target <= {TARGETS['driver_peak_gb']:.0f} GB: "
          f"{verdict[peak_gb <= TARGETS['driver_peak_gb']]})")
    print(f"run directory: {files} files, {size / 2**20:.1f} MiB")
    print(f"resume after kill -9 at {at_kill} of {len(reference)} generations (killed: {first['killed']}): "
          f"resumed in {again['wall_s']:.1f} s; rows equal to the uninterrupted run's: {same}")
    met = verdict[report_s <= TARGETS["report_s"]]
    print(f"report: {report_s:.1f} s (target <= {TARGETS['report_s']:.0f} s: {met})")
    print(f"compare: {compare_s:.1f} s")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
