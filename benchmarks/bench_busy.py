"""Benchmark: how busy a MACE sweep keeps the cores — the CPU time its Ray tasks use against
wall time × cores, and where in the run the cores sit idle.

    python benchmarks/bench_busy.py                          # 16 lineages (4 policies x 4 seeds) x 2 generations
    python benchmarks/bench_busy.py --seeds 2 --generations 1   # a quick look

The sweep is the quickstart (Cu/EMT, the small MACE) with ``--seeds`` seeds of four policies
(replace, accumulate, fresh-real, accumulate-subsample) on the embedded Ray. While it runs, every
process below the ``collapse-sim`` driver is sampled from /proc twice a second: the CPU time of
Ray's task workers (processes titled ``ray::``) is the work; the rest (the driver, raylet, GCS,
dashboard) is the tool's and Ray's own. (Polled every 0.2 s: a worker's last fraction of a
second before it exits can be missed.) Printed: task CPU time / (wall × cores) against the target
(≥ 85 %), the CPU time of the other processes, and the cores' use in ten equal slices of the wall
time, which shows serial stretches (generation 0 and the reference model before the lineages
start, the last generations' measuring).

Timings are only meaningful on otherwise idle cores.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import run_and_watch, with_run_options, work_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TARGET = 0.85
TICK = os.sysconf("SC_CLK_TCK")
POLICIES = [{"kind": "replace"}, {"kind": "accumulate"}, {"kind": "fresh-real", "real_fraction": 0.25},
            {"kind": "accumulate-subsample"}]


def scenario(seeds: int, generations: int) -> dict:
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data.update(name="busy", seeds=list(range(seeds)), generations=generations, policies=POLICIES)
    return data


def processes() -> dict[int, tuple[int, float, bool]]:
    """Every process: pid -> (parent pid, CPU seconds so far, is a Ray task worker)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK,
                                cmdline.startswith(b"ray::"))
    return out


def below(root: int, table: dict) -> set[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, ()))
    return found


class CpuSampler:
    """At each poll, the CPU time so far of every process below the driver; a process counts as a
    task worker once it has been titled ``ray::`` (a worker takes the title only once it runs, and
    drops it again as it exits)."""

    def __init__(self):
        self.cpu: dict[int, tuple[float, bool]] = {}  # pid -> (CPU seconds, is a task worker)
        self.samples: list[tuple[float, float]] = []  # (seconds since start, task CPU seconds so far)

    def __call__(self, root: int, seconds: float) -> None:
        table = processes()
        for pid in below(root, table):
            if pid in table:
                _, cpu, is_worker = table[pid]
                self.cpu[pid] = (cpu, is_worker or self.cpu.get(pid, (0.0, False))[1])
        self.samples.append((seconds, self.total(True)))

    def total(self, workers: bool) -> float:
        return sum(cpu for cpu, is_worker in self.cpu.values() if is_worker == workers)


def slices(samples: list[tuple[float, float]], wall: float, cores: int, n: int = 10) -> list[float]:
    """The cores' use by the tasks in ``n`` equal slices of the wall time (task CPU / slice × cores)."""
    edges = [wall * i / n for i in range(n + 1)]
    cpu_at = lambda t: max((c for s, c in samples if s <= t), default=0.0)
    return [(cpu_at(b) - cpu_at(a)) / ((b - a) * cores) for a, b in zip(edges, edges[1:])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4, help="seeds per policy (4 policies)")
    parser.add_argument("--generations", type=int, default=2)
    args = with_run_options(parser).parse_args(argv)
    base = work_folder(args.keep, "busy")
    path = base / "busy.yaml"
    path.write_text(yaml.safe_dump(scenario(args.seeds, args.generations), sort_keys=False))
    sampler = CpuSampler()
    try:
        result = run_and_watch(["run", str(path), "--out", str(base / "runs"), "--num-cpus", str(args.num_cpus),
                                "--progress-interval", "60"], on_poll=sampler)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    wall, cores = result["wall_s"], args.num_cpus
    result |= {"task_cpu_s": sampler.total(True), "other_cpu_s": sampler.total(False), "samples": sampler.samples}
    busy = result["task_cpu_s"] / (wall * cores)
    print(f"{args.seeds * len(POLICIES)} MACE lineages x {args.generations} generations on {cores} CPUs: "
          f"wall {wall:.1f} s")
    print(f"task CPU time {result['task_cpu_s']:.1f} s / (wall x cores) = {busy:.1%} "
          f"(target >= {TARGET:.0%}: {'met' if busy >= TARGET else 'MISSED'})")
    print(f"driver, raylet and other Ray processes: {result['other_cpu_s']:.1f} s of CPU")
    use = slices(result["samples"], wall, cores)
    print("cores' use by tasks, by tenth of the wall time: " + " ".join(f"{u:.0%}" for u in use))
    return 0


if __name__ == "__main__":
    sys.exit(main())
