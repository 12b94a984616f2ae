"""Cost curves: how a generation's wall time and memory grow with the work — lineages, atoms per
structure, probe-set size and generations (replace against accumulate, whose training set grows).

    python benchmarks/cost_curves.py --csv cost-curves.csv                 # every axis (about an hour on 2 cores)
    python benchmarks/cost_curves.py --csv c.csv --axes probes --quick     # one axis, fewer points
    python benchmarks/cost_curves.py --plot cost-curves.csv --figure cost-curves.png --table summary.csv

Every point is a run of the quickstart (Cu/EMT, the small MACE, 12 epochs) on the embedded Ray with
one setting changed, one seed of ``replace`` unless the axis says otherwise:

- ``lineages``: 1 … 64 lineages (seeds) of one model-fed generation each;
- ``atoms``: fcc Cu supercells of 32, 64, 108 and 256 atoms (real data, probes and samples alike);
- ``probes``: 30 … 1,000 structures in each of the ID and OOD probe sets (k = 7 at 30: CKNNA
  needs n ≥ 4 k);
- ``generations``: replace and accumulate over 6 model-fed generations.

Recorded per point (one CSV row per model-fed generation row of the run, written as each point
ends): the run's wall time, the peak of the summed proportional set size (PSS: shared pages
divided among the processes that map them, so Ray's object store and the libraries count once)
of the driver and every process below it (Ray's included, polled every 0.2 s), and the row's own
stage times (``generation_seconds``, ``train_seconds``,
``sample_seconds``, ``label_seconds``, ``metrics_seconds``) and training-set size. Each CSV row
carries the machine, date and commit; timings are only meaningful on otherwise idle cores.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_busy import below, processes  # noqa: E402
from bench_scale import run_and_watch, with_run_options, work_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: axis -> its points (full, quick)
AXES = {"lineages": ((1, 2, 4, 8, 16, 32, 64), (1, 4)),
        "atoms": ((32, 64, 108, 256), (32, 64)),
        "probes": ((30, 100, 300, 1000), (30, 100)),
        "generations": ((6,), (2,))}
#: atoms -> the fcc supercell (4 atoms per conventional cell)
SUPERCELLS = {32: [2, 2, 2], 64: [2, 2, 4], 108: [3, 3, 3], 256: [4, 4, 4]}
STAGES = ("generation_seconds", "train_seconds", "sample_seconds", "label_seconds", "metrics_seconds")
FIELDS = ("axis", "value", "policy", "generation", "lineages", "atoms", "probes", "n_train", "wall_s",
          "peak_pss_gb", *STAGES, "machine", "date", "commit")


def scenario(axis: str, value: int) -> dict:
    """The quickstart with this point's one change."""
    data = yaml.safe_load((ROOT / "scenarios" / "quickstart.yaml").read_text())
    data.update(name=f"{axis}-{value}", seeds=[0], generations=1, policies=[{"kind": "replace"}])
    if axis == "lineages":
        data["seeds"] = list(range(value))
    elif axis == "atoms":
        data["system"]["supercell"] = SUPERCELLS[value]
    elif axis == "probes":
        for probe in ("id", "ood"):
            data["probes"][probe]["n_structures"] = value
        data.setdefault("metrics", {})["k"] = min(10, value // 4)  # CKNNA needs n >= 4 k
    elif axis == "generations":
        data.update(generations=value, policies=[{"kind": "replace"}, {"kind": "accumulate"}])
    return data


class MemorySampler:
    """The peak, over polls, of the summed PSS of a process and everything below it."""

    def __init__(self):
        self.peak = 0

    def __call__(self, root: int, seconds: float) -> None:
        total = 0
        for pid in below(root, processes()):
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue
            total += next((int(line.split()[1]) * 1024 for line in rollup.splitlines() if line.startswith("Pss:")), 0)
        self.peak = max(self.peak, total)


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def measure(axis: str, value: int, base: Path, num_cpus: int, machine: str) -> list[dict]:
    """Run one point; one record per model-fed generation row."""
    data = scenario(axis, value)
    path = base / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.rmtree(base / "runs" / data["name"], ignore_errors=True)  # a kept folder measured again
    memory = MemorySampler()
    result = run_and_watch(["run", str(path), "--out", str(base / "runs"), "--num-cpus", str(num_cpus),
                            "--progress-interval", "600"], on_poll=memory)
    rows = [json.loads(line) for line in (base / "runs" / data["name"] / "metrics.jsonl").read_text().splitlines()
            if line.strip()]
    atoms = value if axis == "atoms" else 32
    stamp = {"machine": machine, "date": datetime.date.today().isoformat(), "commit": commit()}
    out = []
    for row in rows:
        if row["generation"] == 0:
            continue
        out.append({"axis": axis, "value": value, "policy": row["policy"], "generation": row["generation"],
                    "lineages": len(data["seeds"]) * len(data["policies"]), "atoms": atoms,
                    "probes": data["probes"]["id"]["n_structures"], "n_train": row.get("n_train"),
                    "wall_s": round(result["wall_s"], 2), "peak_pss_gb": round(memory.peak / 2**30, 3),
                    **{s: round(row[s], 3) if isinstance(row.get(s), float) else row.get(s) for s in STAGES},
                    **stamp})
    return out


def summary(rows: list[dict]) -> list[list[str]]:
    """One line per point (per policy on the generations axis, whose two policies share one run,
    its wall time and peak memory): the run's wall time and peak memory, and the mean over its
    model-fed generation rows of each stage time (for generations: the first → the last
    generation's), with the training-set size of those rows."""
    lines = [["axis", "value", "policy", "lineages", "atoms", "probes", "training set", "run wall time (s)",
              "generation (s)", "training (s)", "sampling (s)", "labelling (s)", "metrics (s)",
              "peak memory (GB, PSS)"]]
    points: dict[tuple, list[dict]] = {}
    for row in rows:
        points.setdefault((row["axis"], int(row["value"]), row["policy"]), []).append(row)
    for (axis, value, policy), mine in points.items():
        if axis == "generations":
            mine = sorted(mine, key=lambda r: int(r["generation"]))
            pick = lambda key: f"{float(mine[0][key]):.1f} → {float(mine[-1][key]):.1f}"  # noqa: E731
            size = f"{mine[0]['n_train']} → {mine[-1]['n_train']}"
        else:
            pick = lambda key: f"{sum(float(r[key]) for r in mine) / len(mine):.1f}"  # noqa: E731
            size = mine[0]["n_train"]
        first = mine[0]
        lines.append([axis, str(value), policy, first["lineages"], first["atoms"], first["probes"], size,
                      f"{float(first['wall_s']):.1f}", pick("generation_seconds"), pick("train_seconds"),
                      pick("sample_seconds"), pick("label_seconds"), pick("metrics_seconds"),
                      f"{float(first['peak_pss_gb']):.2f}"])
    return lines


def plot(csv_path: Path, figure: Path) -> None:
    """One panel per axis measured: the mean stage times of a generation (for lineages also the
    run's wall time) and the peak memory, or for generations the training time per generation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    present = [axis for axis in AXES if any(r["axis"] == axis for r in rows)]
    if not present:
        raise SystemExit(f"{csv_path}: no measurements to draw")
    fig, axes = plt.subplots(1, len(present), figsize=(4.5 * len(present), 3.8), squeeze=False)
    for ax, axis in zip(axes[0], present):
        mine = [r for r in rows if r["axis"] == axis]
        if axis == "generations":
            for policy in sorted({r["policy"] for r in mine}):
                line = sorted((int(r["generation"]), float(r["train_seconds"])) for r in mine if r["policy"] == policy)
                ax.plot(*zip(*line), "o-", color="C4" if policy == "accumulate" else "C5",
                        label=f"{policy}: training")
            ax.set_xlabel("generation")
            ax.set_ylabel("s")
        else:
            values = sorted({int(r["value"]) for r in mine})
            by = {v: [r for r in mine if int(r["value"]) == v] for v in values}
            mean = lambda rs, k: sum(float(r[k]) for r in rs) / len(rs)  # noqa: E731
            if axis == "lineages":
                ax.plot(values, [float(by[v][0]["wall_s"]) for v in values], "o-", color="C3", label="run wall time")
            for color, stage in zip(("C0", "C1", "C2"), ("train_seconds", "sample_seconds", "metrics_seconds")):
                ax.plot(values, [mean(by[v], stage) for v in values], "o-", color=color,
                        label=stage.replace("_seconds", ""))
            twin = ax.twinx()
            twin.plot(values, [float(by[v][0]["peak_pss_gb"]) for v in values], "k--", label="peak memory (PSS)")
            twin.set_ylabel("peak memory (GB)")
            twin.set_ylim(bottom=0)
            handles = [h for a in (ax, twin) for h in a.get_legend_handles_labels()[0]]
            ax.legend(handles=handles, fontsize=7)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xticks(values, [str(v) for v in values])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_xlabel(axis)
            ax.set_ylabel("s per generation" if axis != "lineages" else "s (the run) / s per generation")
        ax.set_title(axis)
        if axis == "generations":
            ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(figure, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="write the measurements here")
    parser.add_argument("--axes", default=",".join(AXES), help=f"comma-separated, of {', '.join(AXES)}")
    parser.add_argument("--quick", action="store_true", help="fewer, smaller points")
    parser.add_argument("--machine", default=f"{platform.machine()}, {os.cpu_count()} cores",
                        help="the machine, as the CSV names it")
    parser.add_argument("--plot", type=Path, help="draw this CSV instead of measuring")
    parser.add_argument("--figure", type=Path, default=Path("cost-curves.png"))
    parser.add_argument("--table", type=Path, help="with --plot: also write the per-point summary table here")
    args = with_run_options(parser).parse_args(argv)
    if args.plot:
        plot(args.plot, args.figure)
        if args.table:
            with open(args.plot, newline="") as handle:
                lines = summary(list(csv.DictReader(handle)))
            with open(args.table, "w", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerows(lines)
        return 0
    if args.csv is None:
        parser.error("--csv (or --plot) is required")
    axes = [a.strip() for a in args.axes.split(",") if a.strip()]
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        parser.error(f"--axes: unknown {', '.join(unknown)}; choose from {', '.join(AXES)}")
    base = work_folder(args.keep, "cost")
    count = 0
    try:
        with open(args.csv, "w", newline="") as handle:  # rows written as each point ends
            writer = csv.DictWriter(handle, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            for axis in axes:
                for value in AXES[axis][1 if args.quick else 0]:
                    found = measure(axis, value, base, args.num_cpus, args.machine)
                    writer.writerows(found)
                    handle.flush()
                    count += len(found)
                    print(f"{axis} {value}: wall {found[0]['wall_s']:.1f} s, peak memory "
                          f"{found[0]['peak_pss_gb']:.2f} GB, generation "
                          f"{sum(r['generation_seconds'] for r in found) / len(found):.1f} s", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)
    print(f"{count} rows -> {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
